"""The lead's journey, wired: intake -> routing -> offer cards through the outbox -> SLA ladder,
and the after-effects of every tap (the other copies of a card, timers, re-routing).

Routing, timers and identity are optional services: when one is not wired (a minimal setup),
the flow degrades (e.g. no router: the lead waits in the pool) instead of failing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from bot.actions.buttons import ButtonFactory, actions_for
from bot.cards.builders import (build_claimed_card, build_escalation_card, build_lead_card, build_notice_card,
                                build_pool_card, build_reassigned_card, build_reminder_card)
from leadbot.i18n import t
from bot.cards.model import Card
from bot.cards.render_text import render_text
from bot.cards.views import LeadCardView
from bot.journey.views import lead_card_view
from bot.journey.lookup import LOOKUP
from bot.platforms.copies import copy_rules
from store import dto
from store.lead_status import CLOSED as CLOSED_STATUSES
from store.outbox import CardRecord, NewOutboxItem
from notifications.quiet_hours import CALENDAR_TEAM, ON_DUTY, REPLY
from notifications.sender import dedupe_id

if TYPE_CHECKING:
    from bot.context import AppContext


# Copies whose purpose is to offer the lead (or show who has it): redrawn by Flow.card_for.
OFFER_KINDS = ("lead", "claimed", "pool", "reassigned", "card")


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

    def payload_for(self, card: Card, channel: str, userid: str,
                    meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A card row's payload. ``card_kind`` (the copy's purpose), ``shown`` and ``meta`` go
        into the copy registry when the card is delivered, so later changes redraw it for the
        same purpose."""
        rules = copy_rules(channel)
        payload: dict[str, Any] = {"text": render_text(card, self.lang), "link": card.link,
                                   "card_kind": card.kind, "shown": rules.shown(card)}
        if meta:
            payload["meta"] = dict(meta)
        dingtalk = self.ctx.settings.dingtalk
        payload.update(rules.card_payload(card, userid, template_id=dingtalk.card_template_id if dingtalk else ""))
        return payload

    def _mark_team(self, payload: dict[str, Any], rep: dto.Rep) -> None:
        if rep.team and rep.team in self.ctx.settings.calendar.teams:
            payload[CALENDAR_TEAM] = rep.team  # quiet hours by the rep's team's own calendar

    def update_payload(self, card: Card, platform: str, recipient: str, *, response_code: str = "") -> dict[str, Any]:
        """A card_update row's payload for one delivered copy, by its platform's rules."""
        return copy_rules(platform).update_payload(card, recipient, response_code=response_code)

    async def enqueue(self, items: Sequence[NewOutboxItem]) -> None:
        outbox = self.ctx.services.outbox
        if outbox is None or not items:
            return
        await outbox.enqueue_many(list(items))
        worker = self.ctx.services.delivery_worker
        if worker is not None:
            worker.wake()

    async def view_for(self, lead: dto.Lead, *, sla_due_at: Any = LOOKUP, customer: Any = LOOKUP) -> LeadCardView:
        """What every rep's copy of the lead's card shows (the buttons differ, the view does not).
        Pass what the caller already knows (the deadline, the customer) to save reading it again."""
        due = await self.sla_due(lead) if sla_due_at is LOOKUP else sla_due_at
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
            names = await self.ctx.services.lead_actions.rep_names([lead.owner_id] if lead.owner_id else [])
            return build_claimed_card(view, claimer_name=names.get(lead.owner_id or 0, ""), now=now,
                                      lang=self.lang, link=link, card_ref=card_ref)
        if (lead.claimed_at is None and lead.owner_id not in (None, rep.id)
                and lead.status not in CLOSED_STATUSES):
            # Offered to someone else now (passed on, reassigned, given out of the pool): nobody
            # claimed it, so the card says who has it, never "claimed by".
            names = await self.ctx.services.lead_actions.rep_names([lead.owner_id or 0])
            return build_reassigned_card(replace(view, state="reassigned"),
                                         from_name=t("value.pool", self.lang) if pool else rep.name,
                                         to_name=names.get(lead.owner_id or 0, "?"), now=now, lang=self.lang,
                                         link=link, card_ref=card_ref, state="reassigned")
        if not pool and lead.owner_id is None and lead.status == "pool":
            # An offer made to this rep that ran out: the lead is back in the pool, where the
            # pool card (sent with this change) offers it; this copy says so and offers nothing.
            card = build_reassigned_card(replace(view, state="reassigned"), from_name=rep.name,
                                         to_name=t("value.pool", self.lang), now=now, lang=self.lang, link=link,
                                         card_ref=card_ref, state="reassigned")
            return replace(card, title=t("pooled.title", self.lang, name=view.customer_name or f"#{lead.id}"),
                           subtitle=t("outcome.pooled", self.lang))
        if mine:
            return build_claimed_card(view, claimer_name=rep.name, now=now, lang=self.lang,
                                      claimed_by_viewer=True, buttons=keys, link=link, card_ref=card_ref)
        if pool:
            return build_pool_card(view, now=now, lang=self.lang, buttons=keys, link=link, card_ref=card_ref)
        return build_lead_card(view, now=now, lang=self.lang, buttons=keys, link=link, card_ref=card_ref)

    async def sla_due(self, lead: dto.Lead) -> Any:
        due = self.ctx.services.sla_due
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
        await self.enqueue(items)
        return len(items)

    async def outcome_for(self, lead: dto.Lead, viewer: dto.Rep, *, had_it: int | None = None) -> tuple[str, str]:
        """(what happened, card state) for a view the lead has moved past: claimed (by the viewer
        or someone else), handed to someone else, back in the pool, closed. ``had_it`` is the rep
        the view was about (the escalated owner, the reminded rep)."""
        if lead.status in CLOSED_STATUSES:
            return t(f"state.{'merged' if lead.status == 'merged' else 'closed'}", self.lang), (
                "merged" if lead.status == "merged" else "closed")
        names = await self.ctx.services.lead_actions.rep_names([lead.owner_id] if lead.owner_id else [])
        owner = names.get(lead.owner_id or 0, "?")
        if lead.claimed_at is not None:
            if lead.owner_id == viewer.id:
                return t("outcome.you_claimed", self.lang), "claimed"
            return t("claimed.by", self.lang, name=owner), "claimed"
        if lead.owner_id is None:
            return t("outcome.pooled", self.lang), "reassigned"
        if had_it is not None and lead.owner_id != had_it:
            return t("result.reassigned", self.lang, name=owner), "reassigned"
        return t("outcome.assigned_to", self.lang, name=owner), "reassigned"

    async def card_for_copy(self, lead: dto.Lead, rep: dto.Rep, copy: CardRecord, *,
                            view: LeadCardView | None = None) -> Card | None:
        """The copy redrawn to the lead as it is now, keeping its purpose: an offer shows the
        lead (or who has it now), a reminder stays a reminder and an escalation an escalation,
        each saying what happened. None for purposes this does not redraw (merge suggestions,
        notices): those copies are left alone."""
        kind = copy.card_kind
        if kind in OFFER_KINDS:
            return await self.card_for(lead, rep, pool=kind == "pool", card_ref=copy.card_ref, view=view)
        if kind == "gate":
            return self.gate_passed(lead, rep, copy)
        if kind not in ("reminder", "escalation"):
            return None
        now = self.ctx.clock.now()
        view = view or await self.view_for(lead)
        audience = f"rep:{rep.id}"
        link = self.buttons.link(lead.id, audience, now)
        open_ = lead.status not in CLOSED_STATUSES and lead.claimed_at is None
        if kind == "reminder":
            if open_ and lead.owner_id == rep.id:
                keys = self.buttons.keys(lead, audience, ("claim", "snooze"), now)
                return build_reminder_card(view, now=now, lang=self.lang, buttons=keys, link=link,
                                           card_ref=copy.card_ref)
            outcome, state = await self.outcome_for(lead, rep, had_it=rep.id)
            return build_reminder_card(view, now=now, lang=self.lang, link=link, card_ref=copy.card_ref,
                                       claimed_by_viewer=lead.claimed_at is not None and lead.owner_id == rep.id,
                                       outcome=outcome, state=state)
        escalated = copy.meta.get("owner_id")
        escalated_id = int(escalated) if isinstance(escalated, int) or str(escalated).isdigit() else None
        names = await self.ctx.services.lead_actions.rep_names([r for r in (escalated_id, lead.owner_id) if r])
        shown = replace(view, owner_name=names.get(escalated_id or 0, ""), sla_due_at=_when(copy.meta.get("due")))
        if open_ and lead.owner_id == escalated_id:
            keys = self.buttons.escalation_keys(lead, audience, escalated_id, now)
            return build_escalation_card(shown, now=now, lang=self.lang, buttons=keys, link=link,
                                         card_ref=copy.card_ref)
        outcome, state = await self.outcome_for(lead, rep, had_it=escalated_id)
        return build_escalation_card(shown, now=now, lang=self.lang, link=link, card_ref=copy.card_ref,
                                     owner_now=names.get(lead.owner_id, "") if lead.owner_id else "",
                                     outcome=outcome, state=state)

    def gate_passed(self, lead: dto.Lead, rep: dto.Rep, copy: CardRecord) -> Card | None:
        """A gate refusal ("推进到 X 前需要先补充…", with 去补充) once the lead has reached X: it
        says so, its 去补充 retired. None while the lead still waits at the gate."""
        names = self.ctx.settings.pipeline.stage_names
        waited = str(copy.meta.get("stage") or "")
        if waited not in names or lead.stage not in names or names.index(lead.stage) < names.index(waited):
            return None
        link = self.buttons.link(lead.id, f"rep:{rep.id}", self.ctx.clock.now())
        card = build_notice_card(t("stage.moved", self.lang, stage=waited), lang=self.lang, link=link, tone="good",
                                 card_ref=copy.card_ref, kind="gate")
        return replace(card, state="advanced")

    async def update_copies(self, lead: dto.Lead, reason: str, *, skip: tuple[str, str] | None = None,
                            taken_from: dto.Rep | None = None, clock_only: bool = False,
                            offered_to: int | None = None, stage_moved_for: int | None = None,
                            only: tuple[str, str] | None = None) -> None:
        """Every delivered copy of the lead's card, on both platforms, redrawn to the lead as it is
        now for its own purpose, within each platform's rules (reference/conformance.md W1):
        DingTalk by outTrackId, as often as needed; WeCom only with the copy's unspent code
        younger than 72 h, spent here (one conditional UPDATE) and only when the copy's headline
        changes. A copy that cannot be updated is left alone; when the change took the lead
        from its recipient (``taken_from``), they get a message instead.
        `skip` is (platform, card_ref) of the copy the tap itself answers. `clock_only`: only
        time moved (an SLA step: the countdowns): DingTalk copies are redrawn, WeCom copies keep
        their one code for a change that matters (spent on a countdown, a reminder could not lose
        its 认领 when the lead is taken). `offered_to`: the rep this change hands the lead to in
        a new offer; their older copies (a lead passed and come back) stay as they were, not
        turned into a second live offer that would spend its code and outlive the next change.
        `stage_moved_for`: the owner whose lead changed stage: their own lead copies are redrawn
        on WeCom too, though a stage is a field (their 推进阶段 is bound to the stage shown).
        `only`: (platform, card_ref) of the one copy to look at (a late delivery)."""
        outbox = self.ctx.services.outbox
        if outbox is None:
            return
        copies = await outbox.cards_for_lead(lead.id)
        if not copies and taken_from is None:
            return
        reps_by_user: dict[tuple[str, str], dto.Rep] = {}
        for rep in await self.ctx.store.list_reps():
            if rep.wecom_userid:
                reps_by_user[("wecom", rep.wecom_userid)] = rep
            if rep.dingtalk_userid:
                reps_by_user[("dingtalk", rep.dingtalk_userid)] = rep
        now = self.ctx.clock.now()
        items = []
        view: LeadCardView | None = None
        told_taken = False
        notice = ""
        if taken_from is not None:
            outcome, _ = await self.outcome_for(lead, taken_from, had_it=taken_from.id)
            notice = t("notice.taken", self.lang, name=lead.name or lead.company or f"#{lead.id}", outcome=outcome)
        for copy in copies:
            if only is not None and (copy.platform, copy.card_ref) != only:
                continue
            rep = reps_by_user.get((copy.platform, copy.recipient))
            if rep is None:
                continue
            rules = copy_rules(copy.platform)
            if (clock_only and not rules.redraws_for_the_clock) or (offered_to is not None and rep.id == offered_to):
                continue
            if (copy.platform, copy.card_ref) == skip:
                told_taken = told_taken or (taken_from is not None and rep.id == taken_from.id)
                continue
            view = view or await self.view_for(lead)
            card = await self.card_for_copy(lead, rep, copy, view=view)
            if card is None:
                continue
            shown = rules.shown(card)
            stage_news = (stage_moved_for is not None and rep.id == stage_moved_for
                          and copy.card_kind in (*OFFER_KINDS, "gate"))
            if shown == copy.shown and not stage_news:
                told_taken = told_taken or (taken_from is not None and rep.id == taken_from.id)
                continue
            code = ""
            if rules.updates_spend_a_code:
                code = copy.usable_code(now)
                if not code or copy.id is None or not await outbox.take_code(copy.id, code, now, shown):
                    continue  # no code left: WeCom would refuse; the copy stays as it was
            elif copy.id is not None:
                await outbox.set_shown(copy.id, shown, now)
            payload = self.update_payload(card, copy.platform, copy.recipient, response_code=code)
            if taken_from is not None and rep.id == taken_from.id:
                told_taken = True
                payload["notice"] = notice  # said as a message if the platform refuses the update
            items.append(NewOutboxItem(key=f"lead:{lead.id}:v{lead.version}:{reason}:{copy.platform}:{copy.card_ref}",
                                       channel=copy.platform, kind="card_update", recipient=copy.recipient,
                                       payload=payload, rep_id=rep.id, lead_id=lead.id, urgent=True))
        if taken_from is not None and not told_taken:
            # None of their copies could show it (no WeCom code left): the change is theirs to
            # know, so it comes as a message of its own.
            where = channel_of(taken_from)
            if where is not None:
                items.append(NewOutboxItem(key=f"lead:{lead.id}:v{lead.version}:{reason}:taken:{taken_from.id}",
                                           channel=where[0], kind="text", recipient=where[1],
                                           payload={"text": notice}, rep_id=taken_from.id, lead_id=lead.id,
                                           urgent=True))
        await self.enqueue(items)

    async def redraw_late_copy(self, copy: CardRecord) -> None:
        """A card delivered well after it was built (a catch-up after a long gap, a row held or
        throttled) may show a lead that has changed since, e.g. a reminder's 认领 on a lead its
        rep claimed meanwhile: the copy, now delivered and registered, is redrawn like any other
        (its fresh WeCom code spent only if what it shows differs)."""
        lead = await self.ctx.store.get_lead(copy.lead_id) if copy.lead_id else None
        if lead is not None:
            await self.update_copies(lead, f"late-{copy.card_ref}", only=(copy.platform, copy.card_ref))

    async def notify(self, rep: dto.Rep, key: str, card: Card, *, urgent: bool = False,
                     lead_id: int | None = None, reply: bool = False,
                     meta: Mapping[str, Any] | None = None,
                     extra: Mapping[str, Any] | None = None) -> None:
        """`reply`: the message answers the rep's own action, so quiet hours never hold it.
        `extra`: entries for the delivery worker (an escalation's storm marker, team, since)."""
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
            kind, payload = "card", self.payload_for(card, channel, userid, meta)
        if reply:
            payload[REPLY] = True
        self._mark_team(payload, rep)
        if extra:
            payload.update(extra)
        await self.enqueue([NewOutboxItem(key=key, channel=channel, kind=kind, recipient=userid,
                                           payload=payload, rep_id=rep.id, lead_id=lead_id, urgent=urgent)])

    # ---- the lead's journey ------------------------------------------------------------------

    async def after_routing(self, lead_id: int, decision: Any, *, start_ladder: bool = True) -> None:
        lead = await self.ctx.store.get_lead(lead_id)
        if lead is None:
            return
        if getattr(decision, "outcome", "") == "deferred":
            # Off hours, nobody on duty: routed when the window opens (a timer); nobody is offered
            # it meanwhile, and explain says when and to whom.
            ladder = self.ctx.services.ladder
            if ladder is not None and decision.until is not None:
                await ladder.route_at_window(lead, decision.until)
            return
        chosen = getattr(decision, "rep_id", None)
        if chosen:
            rep = await self.ctx.store.get_rep(chosen)
            if rep is not None:
                # The ladder first: the card counts down to its escalation step.
                ladder = self.ctx.services.ladder
                due: Any = LOOKUP
                if ladder is not None and start_ladder:
                    due = await ladder.start(lead, team=rep.team)
                customer = await self.ctx.store.get_customer(lead.customer_id) if lead.customer_id else None
                view = await self.view_for(lead, sla_due_at=due, customer=customer)
                await self.offer(lead, [rep], round_=str(getattr(decision, "decision_id", None) or lead.version),
                                 view=view, on_duty=getattr(decision, "outcome", "") == "on_duty")
                identity = self.ctx.services.identity
                if identity is not None:
                    await identity.suggest(lead, rep, customer=customer)
                return
        # Pool (公海): every active member of the team gets a personal copy; first claim wins.
        team_id = getattr(decision, "team_id", None) or lead.team_id
        members = [r for r in await self.ctx.store.list_reps(team_id=team_id, status="active")] if team_id \
            else [r for r in await self.ctx.store.list_reps(status="active") if r.role == "rep"]
        await self.offer(lead, members, pool=True, round_=f"pool{lead.version}")

    async def resume_routing(self, lead: dto.Lead) -> bool:
        """The lead's last routing committed, but what follows it (the new owner's ladder and
        offer, the pool's copies) may not have run. Runs it again from the decision on record:
        the offer's outbox key carries the decision id and the ladder's keys the lead's version,
        so a second run sends nothing twice. Only while that decision still holds (the lead is
        unclaimed and with the rep, or in the pool, it chose)."""
        router = self.ctx.services.router
        if router is None or lead.claimed_at is not None or lead.status in CLOSED_STATUSES:
            return False
        decision = await router.last_decision(lead.id)
        if decision is None or getattr(decision, "outcome", "") == "deferred":
            return False
        chosen = getattr(decision, "rep_id", None)
        if chosen != lead.owner_id or (chosen is None and lead.status != "pool"):
            return False
        await self.after_routing(lead.id, decision)
        return True

    # ---- after-effects of taps (bot.actions.service.LeadFlow) --------------------------------

    async def after_claim(self, lead: dto.Lead, rep: dto.Rep, skip: tuple[str, str] | None = None) -> Card | None:
        ladder = self.ctx.services.ladder
        if ladder is not None:
            await ladder.cancel(lead, "claimed")
            await ladder.stage_entered(lead, team=rep.team)
        router, missed = self.ctx.services.router, self.ctx.services.missed_first_touch
        if router is not None and missed is not None and not await missed(lead.id):
            await router.record_first_touch(rep.id, on_time=True)  # counts towards leaving a miss streak
        await self.update_copies(lead, "claimed", skip=skip)
        return await self.card_for(lead, rep)

    async def after_pass(self, lead: dto.Lead, rep: dto.Rep, reason: str,
                         skip: tuple[str, str] | None = None) -> None:
        ladder = self.ctx.services.ladder
        if ladder is not None:
            await ladder.cancel(lead, "passed")
        router = self.ctx.services.router
        if router is not None:
            decision = await router.next_candidate(lead.id, exclude=[rep.id], reason=reason)
            await self.after_routing(lead.id, decision)
        # After routing: the copies show where the lead went (not a claimable lead in between).
        fresh = await self.ctx.store.get_lead(lead.id) or lead
        await self.update_copies(fresh, "passed", skip=skip, offered_to=fresh.owner_id)

    async def owner_team(self, lead: dto.Lead, actor: dto.Rep) -> str:
        """The team whose calendar counts the lead's stage limit: its owner's (a manager may act)."""
        if lead.owner_id in (None, actor.id):
            return actor.team
        owner = await self.ctx.store.get_rep(lead.owner_id)
        return owner.team if owner else actor.team

    async def after_advance(self, lead: dto.Lead, rep: dto.Rep, from_stage: str, to_stage: str,
                            skip: tuple[str, str] | None = None) -> Card | None:
        ladder = self.ctx.services.ladder
        if ladder is not None:
            await ladder.cancel(lead, "first_contact")
            await ladder.stage_entered(lead, team=await self.owner_team(lead, rep))
        await self.update_copies(lead, f"stage-{to_stage}", skip=skip, stage_moved_for=lead.owner_id)
        return await self.card_for(lead, rep)

    async def reassign(self, lead: dto.Lead, actor: dto.Rep, to_rep_id: int | None, reason: str) -> dto.Rep | None:
        actions = self.ctx.services.lead_actions
        if to_rep_id is None:
            router = self.ctx.services.router
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
        return await self._reassigned(lead, updated, to_rep_id)

    async def reassign_escalated(self, lead: dto.Lead, owner_id: int | None,
                                 reason: str) -> tuple[str, dto.Rep | None]:
        """The reassignment of an escalated lead (a storm digest's batch or its full list), only
        while ``owner_id``, its owner when it escalated, still has it unclaimed (decided under
        the lead's row lock, so a claim that lands first wins). Returns ("reassigned", new
        owner), ("pooled", None) when nobody else can take it (the lead goes to its team's
        pool, as an SLA reassignment would; "deferred" off hours with nobody on duty), or ("handled", None) when it was claimed, moved
        or closed meanwhile: then nothing changed."""
        router = self.ctx.services.router
        if router is None:
            return "handled", None
        decision = await router.reassign_escalated(lead.id, owner_id, reason)
        if not getattr(decision, "applied", False):
            return "handled", None
        fresh = await self.ctx.store.get_lead(lead.id)
        to_rep_id = getattr(decision, "rep_id", None)
        if to_rep_id:
            return "reassigned", await self._reassigned(lead, fresh, to_rep_id)
        previous = await self.ctx.store.get_rep(owner_id) if owner_id else None
        if fresh is not None:
            await self.update_copies(fresh, "reassigned", taken_from=previous)
        await self.after_routing(lead.id, decision)
        if getattr(decision, "outcome", "") == "deferred":
            return "deferred", None  # nobody on shift: routed when the window opens (a timer)
        ladder = self.ctx.services.ladder
        if ladder is not None and fresh is not None:
            await ladder.pooled(fresh)
        return "pooled", None

    async def _reassigned(self, lead: dto.Lead, updated: dto.Lead | None, to_rep_id: int) -> dto.Rep | None:
        """After-effects of a reassignment: the copies show it, the new owner gets the offer, the
        ladder starts again for them."""
        target = await self.ctx.store.get_rep(to_rep_id)
        if updated is None or target is None:
            return None
        await self.after_owner_change(updated, lead.owner_id)
        return target

    async def after_owner_change(self, lead: dto.Lead, previous_owner_id: int | None) -> None:
        """What a new owner of an open lead means on the phones, whoever made the change (a
        manager's reassign, the CRM): every copy redrawn for its purpose (an escalation says
        已改派给 X), the previous owner told the lead was taken from them, the new owner offered
        it with their own ladder, or, with no owner now, the team's pool offered it."""
        previous = (await self.ctx.store.get_rep(previous_owner_id)
                    if previous_owner_id and previous_owner_id != lead.owner_id else None)
        await self.update_copies(lead, "reassigned", taken_from=previous, offered_to=lead.owner_id)
        if lead.status in CLOSED_STATUSES:
            return
        ladder = self.ctx.services.ladder
        target = await self.ctx.store.get_rep(lead.owner_id) if lead.owner_id else None
        if target is None:
            if lead.status == "pool":
                await self.after_routing(lead.id, None)
                if ladder is not None:
                    await ladder.pooled(lead)
            return
        # The ladder first: the offer counts down to the new owner's escalation step.
        due: Any = LOOKUP
        if ladder is not None:
            await ladder.cancel(lead, "reassigned")
            due = await ladder.start(lead, team=target.team)
        await self.offer(lead, [target], round_=f"re{lead.version}", view=await self.view_for(lead, sla_due_at=due))

    async def snooze(self, lead: dto.Lead, rep: dto.Rep, delay: timedelta) -> None:
        ladder = self.ctx.services.ladder
        if ladder is not None:
            await ladder.snooze(lead, delay)

    async def merge(self, lead: dto.Lead, actor: dto.Rep, args: Mapping[str, Any]) -> str:
        identity = self.ctx.services.identity
        if identity is None:
            raise RuntimeError("identity resolution is not wired")
        name = await identity.merge_from_card(lead, actor, args)
        await self.redraw_after_merge(lead, "merge")
        return name

    async def redraw_after_merge(self, lead: dto.Lead, what: str) -> None:
        """A merge or its undo leaves the lead's version as it was but changes what its cards
        say (no "possible duplicate" once merged): the copies are redrawn under the usual rules.
        Keyed by the moment, as a merge undone and done again is a change of its own."""
        fresh = await self.ctx.store.get_lead(lead.id) or lead
        await self.update_copies(fresh, f"{what}{self.ctx.clock.now().timestamp():.0f}")

    async def distinct(self, lead: dto.Lead, actor: dto.Rep, args: Mapping[str, Any]) -> None:
        identity = self.ctx.services.identity
        if identity is not None:
            await identity.distinct_from_card(lead, actor, args)

    async def undo(self, lead: dto.Lead, actor: dto.Rep, args: Mapping[str, Any]) -> None:
        identity = self.ctx.services.identity
        if identity is not None:
            await identity.undo_from_card(lead, actor, args)
            await self.redraw_after_merge(lead, "undo")

    async def rep_left(self, rep_id: int, actor: str) -> int:
        """A rep left: their open leads go to new owners (with a card each), their old cards show
        the new owner, and their manager gets one notice listing what moved."""
        router = self.ctx.services.router
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


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)

