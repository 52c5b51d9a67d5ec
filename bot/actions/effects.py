"""A tap's after-effects, impossible to lose.

A claim, a pass or a stage advance commits first; then the lead's other card copies are redrawn,
its ladder and stage timers move, and a passed lead is routed on: several more transactions. If
one of them failed, the inbox retried the tap, the retry answered already_yours / already_done,
and the rest never happened. Now the change's own transaction records the after-effects as a
pending `effects.*` timer (crm/leads.py); they are settled only once they all ran. Until
then a repeat of the tap (the inbox retry, a second tap) runs them again, and so does the timer
sweep after a grace period when nobody repeats it. Every step is idempotent: copy updates and
offers are outbox rows keyed by the lead version, ladder and stage timers are keyed rows, and a
passed lead that already has its next owner is not routed again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from crm.leads import EFFECT_KINDS
from store.timers import PENDING

if TYPE_CHECKING:
    from bot.context import AppContext
    from bot.journey.flow import Flow
    from bot.cards.model import Card


class AfterEffects:
    def __init__(self, ctx: "AppContext", flow: "Flow") -> None:
        self.ctx = ctx
        self.flow = flow

    @property
    def timers(self) -> Any:
        return self.ctx.services.timers

    async def run(self, lead_id: int, kind: str, payload: Mapping[str, Any], *,
                  skip: tuple[str, str] | None = None) -> "Card | None":
        """Runs one recorded after-effect against the lead as it is now; returns the actor's card
        (claim, advance). Raises when a step fails: the marker stays pending."""
        lead = await self.ctx.store.get_lead(lead_id)
        rep_id = payload.get("rep_id")
        rep = await self.ctx.store.get_rep(int(rep_id)) if rep_id is not None else None
        if lead is None or rep is None:
            return None
        if kind == "effects.claim":
            return await self.flow.after_claim(lead, rep, skip=skip)
        if kind == "effects.advance":
            return await self.flow.after_advance(lead, rep, str(payload.get("from", "")), str(payload.get("to", "")),
                                                 skip=skip)
        if kind == "effects.pass":
            if lead.owner_id is None and lead.status == "new":
                await self.flow.after_pass(lead, rep, str(payload.get("reason", "")), skip=skip)
            else:
                # Routing already moved it on (or someone took it). An error may have struck
                # between routing and the next owner's offer: the routing's own after-effects run
                # again from the decision on record (each is keyed, so nothing goes twice), then
                # the copies.
                await self.flow.resume_routing(lead)
                await self.flow.update_copies(lead, "passed", skip=skip, offered_to=lead.owner_id)
            return None
        raise LookupError(f"unknown after-effect {kind!r}")

    async def settle(self, key: str) -> None:
        if self.timers is not None:
            await self.timers.settle([key])

    async def finish(self, lead_id: int, kind: str, key: str, payload: Mapping[str, Any], *,
                     skip: tuple[str, str] | None = None) -> "Card | None":
        card = await self.run(lead_id, kind, payload, skip=skip)
        await self.settle(key)
        return card

    async def catch_up(self, lead_id: int, *, skip: tuple[str, str] | None = None) -> int:
        """Runs whatever after-effects of this lead are still pending (oldest first)."""
        if self.timers is None:
            return 0
        done = 0
        for row in await self.timers.for_lead(lead_id, [PENDING]):
            if row.kind in EFFECT_KINDS:
                await self.finish(lead_id, row.kind, row.key, row.payload, skip=skip)
                done += 1
        return done

    def sweep_handler(self, kind: str) -> Any:
        """For the timer sweep: the marker of a tap nobody repeated, after its grace period."""
        async def fire(lead_id: int, timer_key: str, payload: Mapping[str, Any]) -> None:
            await self.run(lead_id, kind, payload)
        return fire
