"""What happens when an SLA timer fires: the scheduler's LadderActions, carried out with cards
through the outbox. Every outbox key derives from the timer's key, so a timer retried after a
crash never sends twice."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Mapping

from bot.actions.buttons import BUTTON_TTL
from bot.cards.builders import build_escalation_card, build_notice_card, build_reminder_card
from leadbot.i18n import t
from bot.cards.render_dingtalk import dingtalk_markdown
from bot.cards.render_wecom import wecom_markdown_content
from bot.journey.views import lead_card_view
from store import dto
from store.outbox import NewOutboxItem
from notifications.sender import dedupe_id
from scheduler.actions import OWNER_STEPS

if TYPE_CHECKING:
    from bot.context import AppContext
    from scheduler.digest import DigestReport

MAX_REASSIGN_ATTEMPTS = 3


class SlaActions:
    def __init__(self, ctx: "AppContext") -> None:
        self.ctx = ctx

    @property
    def flow(self) -> Any:
        return self.ctx.services.flow

    @property
    def lang(self) -> str:
        return self.ctx.lang

    async def _lead_and_owner(self, lead_id: int) -> tuple[dto.Lead | None, dto.Rep | None]:
        lead = await self.ctx.store.get_lead(lead_id)
        owner = await self.ctx.store.get_rep(lead.owner_id) if lead and lead.owner_id else None
        return lead, owner

    async def _manager_of(self, rep: dto.Rep | None, lead: dto.Lead) -> dto.Rep | None:
        manager_id = rep.manager_id if rep else None
        if manager_id is None:
            team = await self.ctx.store.get_team(lead.team_id or (rep.team_id if rep else 0) or 0)
            manager_id = team.manager_id if team else None
        return await self.ctx.store.get_rep(manager_id) if manager_id else None

    async def _group_post(self, key: str, card: Any, extra: Mapping[str, Any] | None = None) -> None:
        """The managers' group robots (WeCom webhook key / DingTalk custom robot)."""
        items = []
        extra = dict(extra or {})
        wecom, dingtalk = self.ctx.settings.wecom, self.ctx.settings.dingtalk
        if wecom and wecom.manager_robot_key:
            items.append(NewOutboxItem(key=f"{key}:wecom_robot", channel="wecom_robot", kind="robot",
                                       recipient=wecom.manager_robot_key, urgent=True,
                                       payload={"markdown": wecom_markdown_content(card), **extra}))
        if dingtalk and dingtalk.manager_robot_webhook:
            items.append(NewOutboxItem(key=f"{key}:dingtalk_robot", channel="dingtalk_robot", kind="robot",
                                       recipient=dingtalk.manager_robot_webhook, urgent=True,
                                       payload={"title": card.title, "markdown": dingtalk_markdown(card), **extra}))
        if items:
            await self.flow.enqueue(items)

    async def remind(self, lead_id: int, timer_key: str, payload: Mapping[str, Any]) -> None:
        lead, owner = await self._lead_and_owner(lead_id)
        if lead is None or owner is None or lead.claimed_at is not None:
            return
        now = self.ctx.clock.now()
        view = await lead_card_view(self.ctx, lead, sla_due_at=await self.flow.sla_due(lead))
        audience = f"rep:{owner.id}"
        buttons = self.flow.buttons
        key = f"{timer_key}:dm:{owner.id}"
        card = build_reminder_card(view, now=now, lang=self.lang, card_ref=dedupe_id(key),
                                   buttons=buttons.keys(lead, audience, ("claim", "snooze"), now),
                                   link=buttons.link(lead.id, audience, now))
        await self.flow.notify(owner, key, card, lead_id=lead.id)
        await self._redraw(lead, timer_key)

    async def _redraw(self, lead: dto.Lead, timer_key: str) -> None:
        """A ladder step moves what the lead's cards count down to (the next step): the DingTalk
        copies are redrawn by outTrackId (free, as often as it takes). Only the clock moved, so
        the WeCom copies keep their single unspent code for a change that matters to their reader
        (taken from them, claimed by someone): a countdown is not worth it (Flow.update_copies
        clock_only). The lead's version does not change at a step, so the step's own timer key
        keeps the updates apart."""
        await self.flow.update_copies(lead, f"ladder-{timer_key}", clock_only=True)

    async def escalate(self, lead_id: int, timer_key: str, payload: Mapping[str, Any]) -> None:
        lead, owner = await self._lead_and_owner(lead_id)
        if lead is None:
            return
        if owner is not None:
            streak = await self.ctx.services.router.record_first_touch(owner.id, on_time=False)
            if streak is not None and getattr(streak, "kind", "") == "sidelined":
                manager = await self.ctx.store.get_rep(streak.manager_id) if streak.manager_id else None
                if manager is not None:
                    await self._tell_sidelined(manager, owner, lead, f"{timer_key}:sidelined:{owner.id}")
        manager = await self._manager_of(owner, lead)
        now = self.ctx.clock.now()
        # The escalation is about the deadline this step marks, which has just passed: its card
        # says how late the owner is, not the countdown to the next step.
        view = await lead_card_view(self.ctx, lead, sla_due_at=now)
        if owner is not None:
            view = replace(view, owner_name=owner.name)
        # The delivery worker folds a storm of these (past a few a minute to one manager or group)
        # into one digest naming the team and the leads that waited longest.
        team = await self.ctx.store.get_team(lead.team_id) if lead.team_id else None
        named = " · ".join(p for p in (view.customer_name, view.company, view.owner_name) if p)  # no phone
        storm = {"storm": "escalation", "team": team.name if team else "", "since": str(payload.get("since") or ""),
                 "summary": named}
        if manager is not None:
            key = f"{timer_key}:dm:{manager.id}"
            audience = f"rep:{manager.id}"
            card = build_escalation_card(view, now=now, lang=self.lang, card_ref=dedupe_id(key),
                                         buttons=self.flow.buttons.escalation_keys(lead, audience, owner.id if owner else None, now),
                                         link=self.flow.buttons.link(lead.id, audience, now))
            # What later redraws keep: whose lead it was and the deadline that was missed.
            await self.flow.notify(manager, key, card, urgent=True, lead_id=lead.id,
                                   meta={"owner_id": owner.id if owner else None, "due": now.isoformat()},
                                   extra=storm)
        await self._group_post(f"{timer_key}:group", build_escalation_card(view, now=now, lang=self.lang), storm)
        await self._redraw(lead, timer_key)

    async def _tell_sidelined(self, manager: dto.Rep, owner: dto.Rep, lead: dto.Lead, key: str) -> None:
        """The notice names what to do, and the button does it (router.reinstate)."""
        now = self.ctx.clock.now()
        button = self.flow.buttons.signer.key("reinstate", lead.id, f"rep:{manager.id}", now + BUTTON_TTL,
                                              {"rep": owner.id})
        card = build_notice_card(t("notice.sidelined", self.lang, name=owner.name), lang=self.lang,
                                 buttons={"reinstate": button}, card_ref=dedupe_id(key), tone="warning")
        await self.flow.notify(manager, key, card, urgent=True, lead_id=lead.id)

    async def reassign(self, lead_id: int, timer_key: str, payload: Mapping[str, Any]) -> None:
        lead, owner = await self._lead_and_owner(lead_id)
        if lead is None or lead.claimed_at is not None:
            return
        if int(payload.get("attempt", 1)) >= MAX_REASSIGN_ATTEMPTS:
            return  # the pool_return step of this cycle takes over
        decision = await self.ctx.services.router.next_candidate(
            lead_id, exclude=[owner.id] if owner else [], reason="sla_reassign")
        if not getattr(decision, "applied", True):
            return
        await self.flow.after_routing(lead_id, decision, start_ladder=False)
        fresh = await self.ctx.store.get_lead(lead_id)
        if fresh is not None:
            await self.flow.update_copies(fresh, f"sla-reassign-{timer_key}", taken_from=owner,
                                          offered_to=fresh.owner_id)
        ladder = self.ctx.services.ladder
        if ladder is not None and fresh is not None and fresh.owner_id:
            # The new owner's steps join this cycle; its single pool deadline stays where it was.
            await self.ctx.services.timers.cancel(lead_id, kinds=OWNER_STEPS)
            owner = await self.ctx.store.get_rep(fresh.owner_id)
            await ladder.start(fresh, cycle=payload, team=owner.team if owner else "")

    async def return_to_pool(self, lead_id: int, timer_key: str, payload: Mapping[str, Any]) -> None:
        _, owner = await self._lead_and_owner(lead_id)
        lead = await self.ctx.services.lead_actions.to_pool(lead_id, f"timer:{timer_key}")
        if lead is None:
            return
        await self.flow.update_copies(lead, f"pool-{timer_key}", taken_from=owner)
        await self.flow.after_routing(lead_id, None)
        ladder = self.ctx.services.ladder
        if ladder is not None:
            team = await self.ctx.store.get_team(lead.team_id) if lead.team_id else None
            await ladder.pooled(lead, team=team.name if team else (owner.team if owner else ""))

    async def route_at_window(self, lead_id: int, timer_key: str, payload: Mapping[str, Any]) -> None:
        """The working window opened for a lead that came in off hours: whoever is on shift now
        gets it, and its first-touch SLA counts from now."""
        decision = await self.ctx.services.router.assign(lead_id, trigger="window")
        if getattr(decision, "applied", False):
            await self.flow.after_routing(lead_id, decision)

    async def recycle_from_pool(self, lead_id: int, timer_key: str, payload: Mapping[str, Any]) -> None:
        lead = await self.ctx.store.get_lead(lead_id)
        if lead is None or lead.status != "pool":
            return
        decision = await self.ctx.services.router.assign(lead_id, from_pool=True)
        if getattr(decision, "applied", False) and (getattr(decision, "rep_id", None)
                                                    or getattr(decision, "outcome", "") == "deferred"):
            await self.flow.after_routing(lead_id, decision)
            return
        manager = await self._manager_of(None, lead)
        if manager is not None:
            await self.flow.tell(manager, f"{timer_key}:pool:{manager.id}",
                                 t("notice.pool_stale", self.lang, name=lead.name or f"#{lead.id}"), urgent=True)

    async def stagnation(self, lead_id: int, timer_key: str, payload: Mapping[str, Any]) -> None:
        lead, owner = await self._lead_and_owner(lead_id)
        if lead is None:
            return
        target = owner if payload.get("level") == "owner" else await self._manager_of(owner, lead)
        if target is None:
            return
        title = t("notice.stagnation", self.lang, name=lead.name or f"#{lead.id}", stage=payload.get("stage", ""))
        await self.flow.tell(target, f"{timer_key}:{target.id}", title, urgent=False)

    async def digest(self, report: "DigestReport", chart_png: bytes | None, timer_key: str) -> None:
        lines = [f"{t('digest.new', self.lang)}: {report.new}", f"{t('digest.claimed', self.lang)}: {report.claimed}",
                 f"{t('digest.overdue', self.lang)}: {report.overdue}", f"{t('digest.stuck', self.lang)}: {report.stuck_total}"]
        for stage, n in report.stuck_by_stage:
            lines.append(f"  {stage}: {n}")
        title = t("digest.title", self.lang, team=report.team_name or "", day=report.day.isoformat())
        card = build_notice_card(title, "\n".join(lines), lang=self.lang)
        manager = await self.ctx.store.get_rep(report.manager_id) if report.manager_id else None
        if manager is not None:
            # Sent at the hour sales ops chose (often the end of the day): not held for quiet hours.
            await self.flow.notify(manager, f"{timer_key}:dm:{manager.id}", card, urgent=True)
        await self._group_post(f"{timer_key}:group:{report.team_id or 0}", card)
        if chart_png and self.ctx.settings.wecom and self.ctx.settings.wecom.manager_robot_key:
            import base64

            await self.flow.enqueue([NewOutboxItem(
                key=f"{timer_key}:chart:{report.team_id or 0}", channel="wecom_robot", kind="robot",
                recipient=self.ctx.settings.wecom.manager_robot_key,
                payload={"image_base64": base64.b64encode(chart_png).decode()}, urgent=True)])
