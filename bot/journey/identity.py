"""Merge-duplicate from a card: "可能与 X 重复 — 合并?" with merge / different, and undo after a merge.
The identity work itself is identity's (lossless, undoable merge); this module turns
taps into those calls and tells the rep what happened."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Mapping

from bot.cards.builders import build_duplicate_card, build_notice_card
from leadbot.i18n import t
from bot.cards.views import CustomerBrief, DuplicateCardView
from bot.journey.lookup import LOOKUP
from store import dto
from identity.merge import mark_distinct, merge_customers, undo_merge
from notifications.sender import dedupe_id

if TYPE_CHECKING:
    from bot.context import AppContext

_TTL = timedelta(days=3)


def suggested_duplicate(customer: dto.Customer | None) -> Mapping[str, Any] | None:
    """The best other customer this one may be. A customer is never its own duplicate: after a
    merge the survivor inherits the merged record's suggestions, which name the survivor."""
    if customer is None:
        return None
    for best in customer.attributes.get("possible_duplicates") or []:
        if isinstance(best, Mapping) and best.get("customer_id") and str(best["customer_id"]) != str(customer.id):
            return best
    return None


class IdentityActions:
    def __init__(self, ctx: "AppContext") -> None:
        self.ctx = ctx

    async def _brief(self, customer: dto.Customer) -> CustomerBrief:
        owner = await self.ctx.store.get_rep(customer.owner_id) if customer.owner_id else None
        phone = next((v for k, v in customer.identities if k == "phone"), "")
        return CustomerBrief(customer_id=customer.id, name=customer.display_name, company=customer.company,
                             phone=phone, owner_name=owner.name if owner else "")

    async def suggest(self, lead: dto.Lead, rep: dto.Rep, *, customer: dto.Customer | None = LOOKUP) -> bool:
        """After a lead is offered: if its customer looks like an existing one, ask the rep.
        `customer`: the lead's customer when the caller has read it already."""
        if customer is LOOKUP:
            customer = await self.ctx.store.get_customer(lead.customer_id) if lead.customer_id else None
        best = suggested_duplicate(customer)
        if customer is None or best is None:
            return False
        existing = await self.ctx.store.get_customer(int(best["customer_id"]))
        if existing is None or existing.status != "active" or existing.id == customer.id:
            return False
        flow = self.ctx.services.flow
        now = self.ctx.clock.now()
        args = {"into": existing.id, "from": customer.id}
        audience = f"rep:{rep.id}"
        keys = {a: flow.buttons.signer.key(a, lead.id, audience, now + _TTL, args) for a in ("merge", "distinct")}
        key = f"lead:{lead.id}:duplicate:{existing.id}:{rep.id}"
        view = DuplicateCardView(incoming=await self._brief(customer), existing=await self._brief(existing),
                                 # The reason whole, in the card's language (identity.reasons).
                                 reasons=(str(best.get(f"reason_{self.ctx.lang}") or best.get("reason") or ""),)
                                 if best.get("reason") else (),
                                 score=float(best.get("score") or 0) or None)
        card = build_duplicate_card(view, lang=self.ctx.lang, buttons=keys, card_ref=dedupe_id(key),
                                    link=flow.buttons.link(lead.id, audience, now))
        await flow.notify(rep, key, card, lead_id=lead.id)
        return True

    async def merge_from_card(self, lead: dto.Lead, actor: dto.Rep, args: Mapping[str, Any]) -> str:
        into, source = int(args["into"]), int(args["from"])
        result = await merge_customers(self.ctx.store, into, source, f"rep:{actor.id}", reason="card")
        survivor = await self.ctx.store.get_customer(into)
        name = survivor.display_name if survivor else str(into)
        flow = self.ctx.services.flow
        now = self.ctx.clock.now()
        undo = flow.buttons.signer.key("undo", lead.id, f"rep:{actor.id}", now + _TTL, {"merge": result.merge_id})
        key = f"merge:{result.merge_id}:undo:{actor.id}"
        card = build_notice_card(t("result.merged", self.ctx.lang, name=name), lang=self.ctx.lang,
                                 buttons={"undo": undo}, card_ref=dedupe_id(key))
        await flow.notify(actor, key, card, lead_id=lead.id, reply=True)
        # The survivor may still look like another customer (the same person entered three
        # times): the lead's card goes on saying so, so the question comes with its buttons.
        fresh = await self.ctx.store.get_lead(lead.id)
        if fresh is not None:
            await self.suggest(fresh, actor)
        return name

    async def distinct_from_card(self, lead: dto.Lead, actor: dto.Rep, args: Mapping[str, Any]) -> None:
        await mark_distinct(self.ctx.store, int(args["into"]), int(args["from"]), f"rep:{actor.id}")

    async def undo_from_card(self, lead: dto.Lead, actor: dto.Rep, args: Mapping[str, Any]) -> None:
        await undo_merge(self.ctx.store, int(args["merge"]), f"rep:{actor.id}")

