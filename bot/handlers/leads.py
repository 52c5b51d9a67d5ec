"""A new lead, taken from the durable inbox: routed, offered as cards, its SLA ladder started.

The intake request only stores the lead and this event (and answers); the work happens here, so
a crash between the two loses nothing and a slow routing decision never slows a lead source."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping

from bot.events import LeadSubmitted
from bot.handlers import handles
from crm_bridge import dto

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
    ctx.services["processor"].notify()


async def resubmit_unrouted(ctx: "AppContext") -> int:
    """At start: leads stored just before a crash, whose routing event was never written."""
    waiting = [lead for lead in await ctx.store.list_leads(status="new", limit=10000) if lead.owner_id is None]
    for lead in waiting:
        await submit_lead(ctx, lead)
    return len(waiting)


@handles(LeadSubmitted)
async def handle_submit_lead(event: LeadSubmitted, ctx: "AppContext") -> None:
    lead = await ctx.store.get_lead(event.lead_id)
    if lead is None or lead.owner_id is not None or lead.status != "new":
        return  # already routed (a retry of this event, or a CRM command got there first)
    await ctx.services["flow"].on_new_lead(lead)
