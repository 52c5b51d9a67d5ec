"""The lead's journey, wired: intake -> routing -> offer cards through the outbox -> SLA ladder,
and the after-effects of every tap (the other copies of a card, timers, re-routing).

Routing, timers and identity are optional services: when one is not wired (a minimal setup),
the flow degrades (e.g. no router: the lead waits in the pool) instead of failing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from bot.actions.buttons import ButtonFactory, actions_for
from bot.cards.builders import build_claimed_card, build_lead_card, build_notice_card, build_pool_card
from bot.cards.i18n import t
from bot.cards.model import Card
from bot.cards.render_dingtalk import render_dingtalk_card
from bot.cards.render_text import render_text
from bot.cards.render_wecom import render_wecom_template_card
from bot.cards.views import LeadCardView
from bot.lead_views import lead_card_view
from bot.lookup import LOOKUP
from crm_bridge import dto
from crm_bridge.outbox import NewOutboxItem
from notifications.quiet_hours import CALENDAR_TEAM, ON_DUTY, REPLY
from notifications.sender import dedupe_id

if TYPE_CHECKING:
    from bot.context import AppContext


def channel_of(rep: dto.Rep) -> tuple[str, str] | None:
    """The platform a rep is reached on first (WeCom when known there), and their user id."""
    if rep.wecom_userid:
        return "wecom", rep.wecom_userid
    if rep.dingtalk_userid:
        return "dingtalk", rep.dingtalk_userid
    return None


class Flow:
    def __init__(self, ctx: "AppContext", buttons: ButtonFactory) -> None:
        self.ctx = ctx
        self.buttons = buttons

    @property
    def lang(self) -> str:
        return self.ctx.lang

    # ---- outbound helpers --------------------------------------------------------------------

    def payload_for(self, card: Card, channel: str, userid: str) -> dict[str, Any]:
        payload: dict[str, Any] = {"text": render_text(card, self.lang), "link": card.link}
        if channel == "wecom":
            payload["wecom_card"] = render_wecom_template_card(card)
        else:
            payload["dingtalk_card"] = {"template_id": self.ctx.settings.dingtalk.card_template_id
                                        if self.ctx.settings.dingtalk else "",
                                        **_card_data(render_dingtalk_card(card, [userid]))}
        return payload

    def _mark_team(self, payload: dict[str, Any], rep: dto.Rep) -> None:
        if rep.team and rep.team in self.ctx.settings.calendar.teams:
            payload[CALENDAR_TEAM] = rep.team  # quiet hours by the rep's team's own calendar

    async def _enqueue(self, items: Sequence[NewOutboxItem]) -> None:
        outbox = self.ctx.services.get("outbox")
        if outbox is None or not items:
            return
        await outbox.enqueue_many(list(items))
        worker = self.ctx.services.get("delivery_worker")
        if worker is not None:
            worker.wake()

    async def view_for(self, lead: dto.Lead, *, sla_due_at: Any = LOOKUP, customer: Any = LOOKUP) -> LeadCardView:
        """What every rep's copy of the lead's card shows (the buttons differ, the view does not).
        Pass what the caller already knows (the deadline, the customer) to save reading it again."""
        due = await self._sla_due(lead) if sla_due_at is LOOKUP else sla_due_at
        return await lead_card_view(self.ctx, lead, sla_due_at=due, customer=customer)

    async def card_for(self, lead: dto.Lead, rep: dto.Rep, *, pool: bool = False, card_ref: str = "",
                       view: LeadCardView | None = None) -> Card:
        now = self.ctx.clock.now()
        view = view or await self.view_for(lead)
        audience = f"rep:{rep.id}"
        keys = self.buttons.keys(lead, audience, actions_for(lead, rep, pool=pool), now)
        link = self.buttons.link(lead.id, audience, now)
        mine = lead.claimed_at is not None and lead.owner_id == rep.id
        if lead.claimed_at is not None and not mine:
            names = await self.ctx.services["lead_actions"].rep_names([lead.owner_id] if lead.owner_id else [])
            return build_claimed_card(view, claimer_name=names.get(lead.owner_id or 0, ""), now=now,
                                      lang=self.lang, link=link, card_ref=card_ref)
        if mine:
            return build_claimed_card(view, claimer_name=rep.name, now=now, lang=self.lang,
                                      claimed_by_viewer=True, buttons=keys, link=link, card_ref=card_ref)
        if pool:
            return build_pool_card(view, now=now, lang=self.lang, buttons=keys, link=link, card_ref=card_ref)
        return build_lead_card(view, now=now, lang=self.lang, buttons=keys, link=link, card_ref=card_ref)

    async def _sla_due(self, lead: dto.Lead) -> Any:
        due = self.ctx.services.get("sla_due")
        return await due(lead) if due is not None else None

    async def offer(self, lead: dto.Lead, reps: Sequence[dto.Rep], *, pool: bool = False, round_: str = "1",
                    view: LeadCardView | None = None, on_duty: bool = False) -> int:
        """Sends each rep their own copy of the lead card (their own signed buttons)."""
        items = []
        for rep in reps:
            where = channel_of(rep)
            if where is None or rep.status != "active":
                continue
            channel, userid = where
            key = f"lead:{lead.id}:offer:{round_}:{rep.id}"
            view = view or await self.view_for(lead)
            # The copy's platform id (task_id / outTrackId) derives from the outbox key, so a
            # redelivery after a crash is recognised by the platform as the same card.
            card = await self.card_for(lead, rep, pool=pool, card_ref=dedupe_id(key), view=view)
            payload = self.payload_for(card, channel, userid)
            self._mark_team(payload, rep)
            if on_duty:
                payload[ON_DUTY] = True  # the rep on duty gets it now, whatever the hour
            items.append(NewOutboxItem(key=key, channel=channel, kind="card",
                                       recipient=userid, payload=payload, rep_id=rep.id, lead_id=lead.id))
        await self._enqueue(items)
        return len(items)

    async def update_copies(self, lead: dto.Lead, reason: str, *, skip: tuple[str, str] | None = None) -> None:
        """Every delivered copy of the lead's card, on both platforms, shows the lead as it is now.
        `skip` is (platform, card_ref) of the copy the tap itself answers synchronously."""
        outbox = self.ctx.services.get("outbox")
        if outbox is None:
            return
        copies = await outbox.cards_for_lead(lead.id)
        if not copies:
            return
        reps_by_user: dict[tuple[str, str], dto.Rep] = {}
        for rep in await self.ctx.store.list_reps():
            if rep.wecom_userid:
                reps_by_user[("wecom", rep.wecom_userid)] = rep
            if rep.dingtalk_userid:
                reps_by_user[("dingtalk", rep.dingtalk_userid)] = rep
        items = []
        view: LeadCardView | None = None
        for copy in copies:
            rep = reps_by_user.get((copy.platform, copy.recipient))
            if rep is None or (copy.platform, copy.card_ref) == skip:
                continue
            view = view or await self.view_for(lead)
            card = await self.card_for(lead, rep, card_ref=copy.card_ref, view=view)
            if copy.platform == "wecom":
                if not copy.response_code:
                    continue  # no code left to update this copy with (WeCom codes are single-use)
                payload: dict[str, Any] = {"response_code": copy.response_code,
                                           "wecom_card": render_wecom_template_card(card, for_update=True)}
                payload["wecom_card"]["task_id"] = copy.card_ref
            else:
                payload = {"out_track_id": copy.card_ref, **_card_data(render_dingtalk_card(card, [copy.recipient]))}
            items.append(NewOutboxItem(key=f"lead:{lead.id}:v{lead.version}:{reason}:{copy.platform}:{copy.card_ref}",
                                       channel=copy.platform, kind="card_update", recipient=copy.recipient,
                                       payload=payload, rep_id=rep.id, lead_id=lead.id, urgent=True))
        await self._enqueue(items)

    async def notify(self, rep: dto.Rep, key: str, card: Card, *, urgent: bool = False,
                     lead_id: int | None = None, reply: bool = False) -> None:
        """`reply`: the message answers the rep's own action, so quiet hours never hold it."""
        where = channel_of(rep)
        if where is None:
            return
        channel, userid = where
        if not card.callback_buttons and not card.link:
            # Nothing to tap and nowhere to go: a notice reads best (and everywhere) as text.
            kind, payload = "text", {"text": render_text(card, self.lang)}
        else:
            if not card.card_ref:
                card = replace(card, card_ref=dedupe_id(key))
            kind, payload = "card", self.payload_for(card, channel, userid)
        if reply:
            payload[REPLY] = True
        self._mark_team(payload, rep)
        await self._enqueue([NewOutboxItem(key=key, channel=channel, kind=kind, recipient=userid,
                                           payload=payload, rep_id=rep.id, lead_id=lead_id, urgent=urgent)])

    # ---- the lead's journey ------------------------------------------------------------------

    async def after_routing(self, lead_id: int, decision: Any, *, start_ladder: bool = True) -> None:
        lead = await self.ctx.store.get_lead(lead_id)
        if lead is None:
            return
        if getattr(decision, "outcome", "") == "deferred":
            # Off hours, nobody on duty: routed when the window opens (a timer); nobody is offered
            # it meanwhile, and explain says when and to whom.
            ladder = self.ctx.services.get("ladder")
            if ladder is not None and decision.until is not None:
                await ladder.route_at_window(lead, decision.until)
            return
        chosen = getattr(decision, "rep_id", None)
        if chosen:
            rep = await self.ctx.store.get_rep(chosen)
            if rep is not None:
                # The ladder first: the card counts down to its escalation step.
                ladder = self.ctx.services.get("ladder")
                due: Any = LOOKUP
                if ladder is not None and start_ladder:
                    due = await ladder.start(lead, team=rep.team)
                customer = await self.ctx.store.get_customer(lead.customer_id) if lead.customer_id else None
                view = await self.view_for(lead, sla_due_at=due, customer=customer)
                await self.offer(lead, [rep], round_=str(getattr(decision, "decision_id", None) or lead.version),
                                 view=view, on_duty=getattr(decision, "outcome", "") == "on_duty")
                identity = self.ctx.services.get("identity")
                if identity is not None:
                    await identity.suggest(lead, rep, customer=customer)
                return
        # Pool (公海): every active member of the team gets a personal copy; first claim wins.
        team_id = getattr(decision, "team_id", None) or lead.team_id
        members = [r for r in await self.ctx.store.list_reps(team_id=team_id, status="active")] if team_id \
            else [r for r in await self.ctx.store.list_reps(status="active") if r.role == "rep"]
        await self.offer(lead, members, pool=True, round_=f"pool{lead.version}")

    # ---- after-effects of taps (bot.actions.service.LeadFlow) --------------------------------

    async def after_claim(self, lead: dto.Lead, rep: dto.Rep, skip: tuple[str, str] | None = None) -> Card | None:
        ladder = self.ctx.services.get("ladder")
        if ladder is not None:
            await ladder.cancel(lead, "claimed")
            await ladder.stage_entered(lead)
        router, missed = self.ctx.services.get("router"), self.ctx.services.get("missed_first_touch")
        if router is not None and missed is not None and not await missed(lead.id):
            await router.record_first_touch(rep.id, on_time=True)  # counts towards leaving a miss streak
        await self.update_copies(lead, "claimed", skip=skip)
        return await self.card_for(lead, rep)

    async def after_pass(self, lead: dto.Lead, rep: dto.Rep, reason: str) -> None:
        ladder = self.ctx.services.get("ladder")
        if ladder is not None:
            await ladder.cancel(lead, "passed")
        await self.update_copies(lead, "passed")
        router = self.ctx.services.get("router")
        if router is not None:
            decision = await router.next_candidate(lead.id, exclude=[rep.id], reason=reason)
            await self.after_routing(lead.id, decision)

    async def after_advance(self, lead: dto.Lead, rep: dto.Rep, from_stage: str, to_stage: str,
                            skip: tuple[str, str] | None = None) -> Card | None:
        ladder = self.ctx.services.get("ladder")
        if ladder is not None:
            await ladder.cancel(lead, "first_contact")
            await ladder.stage_entered(lead)
        await self.update_copies(lead, f"stage-{to_stage}", skip=skip)
        return await self.card_for(lead, rep)

    async def reassign(self, lead: dto.Lead, actor: dto.Rep, to_rep_id: int | None, reason: str) -> dto.Rep | None:
        actions = self.ctx.services["lead_actions"]
        if to_rep_id is None:
            router = self.ctx.services.get("router")
            if router is None:
                return None
            exclude = [lead.owner_id] if lead.owner_id else []
            decision = await router.next_candidate(lead.id, exclude=exclude, reason=reason)
            to_rep_id = getattr(decision, "rep_id", None)
            if not to_rep_id:
                return None
            updated = await self.ctx.store.get_lead(lead.id)
        else:
            updated = await actions.reassign(lead.id, to_rep_id, f"rep:{actor.id}", reason)
        target = await self.ctx.store.get_rep(to_rep_id)
        if updated is None or target is None:
            return None
        await self.update_copies(updated, "reassigned")
        await self.offer(updated, [target], round_=f"re{updated.version}")
        ladder = self.ctx.services.get("ladder")
        if ladder is not None:
            await ladder.cancel(updated, "reassigned")
            await ladder.start(updated, team=target.team)
        return target

    async def snooze(self, lead: dto.Lead, rep: dto.Rep, delay: timedelta) -> None:
        ladder = self.ctx.services.get("ladder")
        if ladder is not None:
            await ladder.snooze(lead, delay)

    async def merge(self, lead: dto.Lead, actor: dto.Rep, args: Mapping[str, Any]) -> str:
        identity = self.ctx.services.get("identity")
        if identity is None:
            raise RuntimeError("identity resolution is not wired")
        return await identity.merge_from_card(lead, actor, args)

    async def distinct(self, lead: dto.Lead, actor: dto.Rep, args: Mapping[str, Any]) -> None:
        identity = self.ctx.services.get("identity")
        if identity is not None:
            await identity.distinct_from_card(lead, actor, args)

    async def undo(self, lead: dto.Lead, actor: dto.Rep, args: Mapping[str, Any]) -> None:
        identity = self.ctx.services.get("identity")
        if identity is not None:
            await identity.undo_from_card(lead, actor, args)

    async def rep_left(self, rep_id: int, actor: str) -> int:
        """A rep left: their open leads go to new owners (with a card each), their old cards show
        the new owner, and their manager gets one notice listing what moved."""
        router = self.ctx.services.get("router")
        leaving = await self.ctx.store.get_rep(rep_id)
        if router is None or leaving is None:
            return 0
        moved = await router.reroute_open_leads(rep_id)
        for lead, decision in moved:
            await self.update_copies(lead, "rep-left")
            await self.after_routing(lead.id, decision)
        await self.ctx.store.audit(actor, "rep.left", "rep", str(rep_id), {"rerouted": [lead.id for lead, _ in moved]})
        manager = await self.ctx.store.get_rep(leaving.manager_id) if leaving.manager_id else None
        if manager is not None and moved:
            lines = [f"#{lead.id} {lead.name or lead.company}" for lead, _ in moved[:20]]
            await self.tell(manager, f"rep:{rep_id}:left:{len(moved)}",
                            t("notice.rep_left", self.lang, name=leaving.name, n=len(moved)), "\n".join(lines),
                            urgent=True)
        return len(moved)

    async def tell(self, rep: dto.Rep, key: str, title: str, body: str = "", *, urgent: bool = False) -> None:
        await self.notify(rep, key, build_notice_card(title, body, lang=self.lang), urgent=urgent)


def _card_data(rendered: Mapping[str, Any]) -> dict[str, Any]:
    """render_dingtalk_card's shape -> the outbox payload's (card_data / private_data)."""
    out: dict[str, Any] = {"card_data": rendered.get("cardData", {})}
    if rendered.get("privateData"):
        out["private_data"] = rendered["privateData"]
    return out

