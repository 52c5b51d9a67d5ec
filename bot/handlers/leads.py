"""A new lead, taken from the durable inbox: routed, offered as cards, its SLA ladder started.

The intake request only stores the lead and this event (and answers); the work happens here, so
a crash between the two loses nothing and a slow routing decision never slows a lead source."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping

from bot.events import LeadSubmitted
from bot.handlers import handles
from store import dto

if TYPE_CHECKING:
    from bot.context import AppContext

PLATFORM = "leadbot"


def inbox_key(lead_id: int) -> str:
    return f"leadbot:lead:{lead_id}:submitted"


def parse_internal(payload: Mapping[str, Any]) -> LeadSubmitted | None:
    if payload.get("type") != "lead_submitted":
        return None
    return LeadSubmitted(lead_id=int(payload["lead_id"]), source_channel=str(payload.get("channel", "")),
                         occurred_at=datetime.fromisoformat(str(payload["at"])))


async def submit_lead(ctx: "AppContext", lead: dto.Lead) -> None:
    """Queues routing for a stored lead (idempotent: one inbox row per lead)."""
    await ctx.inbox.put(PLATFORM, inbox_key(lead.id), "lead_submitted",
                        {"type": "lead_submitted", "lead_id": lead.id, "channel": lead.source_channel,
                         "at": lead.created_at.isoformat()})
    ctx.services.processor.notify()


async def resubmit_unrouted(ctx: "AppContext") -> int:
    """At start: leads stored just before a crash, whose routing event was never written."""
    waiting = [lead for lead in await ctx.store.list_leads(status="new", limit=10000) if lead.owner_id is None]
    for lead in waiting:
        await submit_lead(ctx, lead)
    return len(waiting)


@handles(LeadSubmitted)
async def handle_submit_lead(event: LeadSubmitted, ctx: "AppContext") -> None:
    router = ctx.services.router
    if router is None:
        return  # no routing wired: the lead waits in the pool
    try:
        # The router reads the lead under its lock and leaves a lead already handled alone.
        decision = await router.assign(event.lead_id)
    except LookupError:
        return  # deleted since it was stored
    if decision.applied:
        await ctx.services.flow.after_routing(event.lead_id, decision)
        return
    lead = await ctx.store.get_lead(event.lead_id)
    if lead is not None:
        await _finish_interrupted_routing(ctx, lead)


async def _finish_interrupted_routing(ctx: "AppContext", lead: dto.Lead) -> None:
    """Routing commits before the cards are offered and the ladder starts: a crash in between
    leaves this event to be retried with the lead already routed. Finish the job when nothing has
    happened to the lead since its first routing decision; offers and ladder timers have
    deterministic keys, so whatever did get written before the crash is not written twice. A lead
    claimed, rerouted or moved by the CRM since is left as it is."""
    router = ctx.services.router
    if router is not None and lead.status == "waiting":
        # Deferred to the working window: make sure its timer exists (same key if it does).
        decision = await router.last_decision(lead.id)
        if decision is not None and decision.outcome == "deferred":
            await ctx.services.flow.after_routing(lead.id, decision)
        return
    if router is None or lead.claimed_at is not None or lead.status not in ("assigned", "pool"):
        return
    decision = await router.last_decision(lead.id)
    if decision is None or decision.previous_owner_id is not None or decision.rep_id != lead.owner_id:
        return
    await ctx.services.flow.after_routing(lead.id, decision)
