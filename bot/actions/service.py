"""The one place a tap becomes a change: card buttons (WeCom, DingTalk), the H5 page and text
commands all call ActionService.perform, so every path checks the same token, the same actor and
the same permissions, and applies the change exactly once."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Protocol

from bot.actions.buttons import ESCALATED_OWNER
from bot.actions.tokens import ActionClaims, ActionSigner, TokenError
from bot.cards.builders import build_notice_card, build_reminder_card, build_storm_result_card
from leadbot.i18n import t
from bot.cards.model import Card
from bot.cards.views import StormOutcome
from bot.actions.storm import BATCH, lead_name
from store import dto
from identity.merge import MergeError
from crm.leads import LeadActions, effects_key, stages_from_settings

if TYPE_CHECKING:
    from bot.context import AppContext

# Every action a token may name, by name: perform() runs HANDLERS[claims.action]. A new card
# action is a method here with @action("name"), its name in bot/cards/model.py ACTIONS.
ActionHandler = Callable[..., Awaitable["ActionOutcome"]]
HANDLERS: dict[str, ActionHandler] = {}


def action(name: str) -> Callable[[ActionHandler], ActionHandler]:
    def register(fn: ActionHandler) -> ActionHandler:
        if name in HANDLERS:
            raise ValueError(f"action {name!r} is registered twice")
        HANDLERS[name] = fn
        return fn
    return register


@dataclass(frozen=True, slots=True)
class Actor:
    """Who tapped: a platform user id, or "h5" for the action page (whose link is bound to one
    recipient, so the token's audience is the actor)."""

    platform: str
    user_id: str = ""
    card_ref: str = ""  # the tapped copy (answered synchronously, so not updated again)

    @property
    def tapped_copy(self) -> tuple[str, str] | None:
        return (self.platform, self.card_ref) if self.card_ref else None


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    ok: bool
    code: str
    message: str
    lead_id: int | None = None
    rep_id: int | None = None
    card: Card | None = None  # what the actor's own copy should show now
    data: Mapping[str, Any] = field(default_factory=dict)


class LeadFlow(Protocol):
    """After-effects of actions (card copies, timers, routing); implemented in bot/journey/flow.py."""

    buttons: Any

    async def card_for(self, lead: dto.Lead, rep: dto.Rep, *, pool: bool = False, card_ref: str = "",
                       view: Any = None) -> Card: ...

    async def view_for(self, lead: dto.Lead) -> Any: ...

    async def after_claim(self, lead: dto.Lead, rep: dto.Rep, skip: tuple[str, str] | None = None) -> Card | None: ...

    async def after_pass(self, lead: dto.Lead, rep: dto.Rep, reason: str,
                         skip: tuple[str, str] | None = None) -> None: ...

    async def after_advance(self, lead: dto.Lead, rep: dto.Rep, from_stage: str, to_stage: str,
                            skip: tuple[str, str] | None = None) -> Card | None: ...

    async def reassign(self, lead: dto.Lead, actor: dto.Rep, to_rep_id: int | None, reason: str) -> dto.Rep | None: ...

    async def reassign_escalated(self, lead: dto.Lead, owner_id: int | None,
                                 reason: str) -> tuple[str, dto.Rep | None]: ...

    async def snooze(self, lead: dto.Lead, rep: dto.Rep, delay: timedelta) -> None: ...

    async def merge(self, lead: dto.Lead, actor: dto.Rep, args: Mapping[str, Any]) -> str: ...

    async def distinct(self, lead: dto.Lead, actor: dto.Rep, args: Mapping[str, Any]) -> None: ...

    async def undo(self, lead: dto.Lead, actor: dto.Rep, args: Mapping[str, Any]) -> None: ...


class ActionService:
    def __init__(self, ctx: "AppContext", signer: ActionSigner, lead_actions: LeadActions, flow: LeadFlow) -> None:
        self.ctx = ctx
        self.signer = signer
        self.leads = lead_actions
        self.flow = flow
        self.stages = stages_from_settings(ctx.settings.pipeline.stages)

    @property
    def lang(self) -> str:
        return self.ctx.lang

    def _refuse(self, code: str, message_key: str, lead_id: int | None = None, **params: Any) -> ActionOutcome:
        return ActionOutcome(False, code, t(message_key, self.lang, **params), lead_id)

    async def _audit_refusal(self, actor: Actor, reason: str, claims: ActionClaims | None, key: str) -> None:
        await self.ctx.store.audit(f"{actor.platform}:{actor.user_id}", "action.refused", "lead",
                                   str(claims.lead_id) if claims else "",
                                   {"reason": reason, "action": key.partition(":")[0][:32]})
        self.ctx.log.info("action.refused", reason=reason, platform=actor.platform)

    async def _resolve_actor(self, actor: Actor, claims: ActionClaims) -> dto.Rep | None:
        if actor.platform == "h5":
            if claims.rep_id is None:
                return None
            return await self.ctx.store.get_rep(claims.rep_id)
        return await self.ctx.store.rep_by_platform_id(actor.platform, actor.user_id)

    async def _allowed(self, rep: dto.Rep, claims: ActionClaims, lead: dto.Lead) -> bool:
        if rep.status == "left":
            return False
        if rep.role == "admin":
            return True
        if claims.action == "reassign":
            if rep.role != "manager":
                return False
            if lead.owner_id is None:
                return lead.team_id is None or lead.team_id == rep.team_id
            owner = await self.ctx.store.get_rep(lead.owner_id)
            return owner is None or owner.manager_id == rep.id or owner.team_id == rep.team_id
        if claims.action == "snooze" and lead.owner_id != rep.id and rep.role != "manager":
            # A token outlives a change of owner: a former owner's snooze would move the new
            # owner's ladder. It acts only for whoever owns the lead now.
            return False
        # Every other token is bound to one recipient (or one team's pool members).
        if claims.rep_id is not None:
            return claims.rep_id == rep.id
        if claims.team_id is not None:
            return rep.team_id == claims.team_id and rep.status == "active"
        return False

    async def perform(self, key: str, actor: Actor, *, params: Mapping[str, str] | None = None) -> ActionOutcome:
        now = self.ctx.clock.now()
        try:
            claims = self.signer.parse_key(key, now)
        except TokenError as e:
            await self._audit_refusal(actor, f"token_{e.kind}", None, key)
            message = "error.token_expired" if e.kind == "expired" else "error.token_forged"
            return self._refuse(f"refused_{e.kind}", message)
        if claims.action == "reassign" and claims.args.get(BATCH):
            return await self._reassign_batch(claims, actor, key)
        lead = await self.ctx.store.get_lead(claims.lead_id)
        if lead is None:
            return self._refuse("not_found", "error.not_found", claims.lead_id)
        rep = await self._resolve_actor(actor, claims)
        if rep is None or not await self._allowed(rep, claims, lead):
            await self._audit_refusal(actor, "not_allowed", claims, key)
            return self._refuse("refused_not_allowed", "error.not_allowed", lead.id)
        handler = HANDLERS.get(claims.action)
        if handler is None:
            return self._refuse("refused_unknown", "error.not_allowed", lead.id)
        outcome = await handler(self, lead, rep, claims, dict(params or {}), actor)
        self.ctx.log.info("action.done", action=claims.action, lead_id=lead.id, rep_id=rep.id,
                          code=outcome.code, platform=actor.platform)
        return outcome

    # ---- actions ------------------------------------------------------------------------------

    async def _effects_now(self, action: str, lead: dto.Lead, payload: Mapping[str, Any],
                           actor: Actor) -> Card | None:
        """Runs the after-effects the change recorded (bot/actions/effects.py) and settles them."""
        effects = self.ctx.services.effects
        skip = actor.tapped_copy
        if effects is None:  # a minimal setup without the effects service: run them directly
            rep = await self.ctx.store.get_rep(int(payload["rep_id"]))
            if action == "claim" and rep is not None:
                return await self.flow.after_claim(lead, rep, skip=skip)
            return None
        return await effects.finish(lead.id, f"effects.{action}", effects_key(action, lead.id, lead.version),
                                    payload, skip=skip)

    async def _pending_effects(self, lead_id: int) -> None:
        """A repeat of a tap (the inbox retrying after an error, or a second tap) first finishes
        what the first one left undone."""
        effects = self.ctx.services.effects
        if effects is not None:
            await effects.catch_up(lead_id)

    async def _as_tapped(self, card: Card | None, actor: Actor, body: str = "", state: str = "") -> Card | None:
        """The actor's own copy redrawn: the tapped card's id (a WeCom passive reply or update
        must name the task_id it replaces), and what happened in its body."""
        if card is None:
            return None
        changes: dict[str, Any] = {}
        if actor.card_ref:
            changes["card_ref"] = actor.card_ref
        if body:
            changes["body"] = "\n".join(x for x in (body, card.body) if x)
        if state:
            changes["state"] = state
        return replace(card, **changes) if changes else card

    def _retired(self, title: str, actor: Actor, *, state: str, body: str = "") -> Card:
        """A card whose work is done: what happened, and no buttons left to tap."""
        card = build_notice_card(title, body, lang=self.lang, card_ref=actor.card_ref, tone="good")
        return replace(card, state=state)

    @action("claim")
    async def _do_claim(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        result = await self.leads.claim(lead.id, rep.id, f"rep:{rep.id}", effects=True)
        if result.outcome == "claimed" and result.lead is not None:
            card = await self._effects_now("claim", result.lead, {"rep_id": rep.id}, actor)
            return ActionOutcome(True, "claimed", t("result.claimed", self.lang), lead.id, rep.id,
                                 await self._as_tapped(card, actor))
        if result.outcome == "already_yours":
            await self._pending_effects(lead.id)
            now_lead = await self.ctx.store.get_lead(lead.id) or result.lead or lead
            card = await self.flow.card_for(now_lead, rep, card_ref=actor.card_ref)
            return ActionOutcome(True, "already_yours", t("error.already_done", self.lang), lead.id, rep.id,
                                 await self._as_tapped(card, actor, t("error.already_done", self.lang)))
        if result.outcome == "taken":
            names = await self.leads.rep_names([result.owner_id] if result.owner_id else [])
            name = names.get(result.owner_id or 0, "?")
            # A stale tap: the lead went to someone else. "Claimed by" only when they claimed it.
            claimed = result.lead is not None and result.lead.claimed_at is not None
            message = (t("error.already_claimed", self.lang, name=name) if claimed
                       else t("outcome.assigned_to", self.lang, name=name))
            return ActionOutcome(False, "taken", message, lead.id, rep.id)
        return self._refuse(result.outcome, "error.not_found", lead.id)

    @action("pass")
    async def _do_pass(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        reason = (params.get("reason") or claims.args.get("reason") or "declined")[:200]
        released = await self.leads.release(lead.id, rep.id, reason, f"rep:{rep.id}", effects=True)
        if released is None:
            await self._pending_effects(lead.id)
            done = t("error.already_done", self.lang)
            return ActionOutcome(True, "already_done", done, lead.id, rep.id,
                                 self._retired(t("result.passed", self.lang), actor, state="passed", body=done))
        await self._effects_now("pass", released, {"rep_id": rep.id, "reason": reason}, actor)
        message = t("result.passed", self.lang)
        return ActionOutcome(True, "passed", message, lead.id, rep.id,
                             self._retired(message, actor, state="passed", body=_lead_line(released)))

    @action("advance")
    async def _do_advance(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        if lead.owner_id != rep.id and rep.role not in ("manager", "admin"):
            return self._refuse("refused_not_allowed", "error.not_allowed", lead.id)
        evidence = {k[len("evidence."):]: v for k, v in params.items() if k.startswith("evidence.") and v}
        expected = claims.args.get("from")
        result = await self.leads.advance(lead.id, self.stages, f"rep:{rep.id}",
                                          expected_stage=expected if isinstance(expected, str) else None,
                                          evidence=evidence, effects_for=rep.id)
        if result.outcome == "missing_evidence":
            names = t("sep.list", self.lang).join(t(f"gate.{g}", self.lang) if _has(f"gate.{g}") else g
                                                  for g in result.missing)
            message = t("error.missing_gate", self.lang, stage=result.to_stage, evidence=names)
            link = ""
            if actor.platform != "h5":
                # The H5 page of this lead has the evidence form: the refusal says where to go.
                link = self.flow.buttons.link(lead.id, f"rep:{rep.id}", self.ctx.clock.now())
            return ActionOutcome(False, "missing_evidence", message, lead.id, rep.id,
                                 data={"missing": list(result.missing), "stage": result.to_stage, "link": link})
        if result.outcome in ("stale", "not_next"):
            await self._pending_effects(lead.id)
            done = t("error.already_done", self.lang)
            now_lead = await self.ctx.store.get_lead(lead.id) or lead
            card = await self.flow.card_for(now_lead, rep, card_ref=actor.card_ref)
            return ActionOutcome(True, "already_done", done, lead.id, rep.id, await self._as_tapped(card, actor, done))
        if result.outcome != "advanced" or result.lead is None:
            return self._refuse(result.outcome, "error.not_found", lead.id)
        card = await self._effects_now("advance", result.lead, {"rep_id": rep.id, "from": result.from_stage,
                                                                "to": result.to_stage}, actor)
        return ActionOutcome(True, "advanced", t("stage.moved", self.lang, stage=result.to_stage), lead.id,
                             rep.id, await self._as_tapped(card, actor), data={"stage": result.to_stage})

    @action("reassign")
    async def _do_reassign(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        if ESCALATED_OWNER in claims.args:
            # From a storm digest's list: only while the lead is as it was when it escalated.
            owner = int(claims.args[ESCALATED_OWNER] or 0) or None
            done = await self._reassign_escalated(lead, owner)
            if done.outcome == "skipped":
                return ActionOutcome(False, "skipped", t("storm.skipped_line", self.lang, name=done.name, why=done.why),
                                     lead.id, rep.id)
            return ActionOutcome(True, done.outcome, self._moved_line(done), lead.id, rep.id)
        target = claims.args.get("to") or params.get("to")
        to_rep_id = None
        if target not in (None, ""):
            target_rep = (await self.ctx.store.get_rep(int(target))
                          if str(target).isascii() and str(target).isdigit() and len(str(target)) <= 18 else None)
            # Only to someone who can take it now: an active rep, of the manager's own team.
            if (target_rep is None or target_rep.status != "active" or target_rep.role != "rep"
                    or (rep.role != "admin" and target_rep.team_id != rep.team_id)):
                return self._refuse("refused_target", "error.not_allowed", lead.id)
            to_rep_id = target_rep.id
        new_owner = await self.flow.reassign(lead, rep, to_rep_id, params.get("reason", "manager"))
        if new_owner is None:
            return ActionOutcome(False, "no_candidate", t("error.not_allowed", self.lang), lead.id, rep.id)
        return ActionOutcome(True, "reassigned", t("result.reassigned", self.lang, name=new_owner.name),
                             lead.id, rep.id)

    async def _reassign_batch(self, claims: ActionClaims, actor: Actor, key: str) -> ActionOutcome:
        """全部改派 on a storm digest: every lead of the digest judged as it is now; those claimed,
        moved or closed since are skipped and named with why, the rest move on from the owner
        they escalated from. The tapped card becomes the report."""
        rep = await self._resolve_actor(actor, claims)
        if (rep is None or rep.status == "left" or rep.role not in ("manager", "admin")
                or claims.rep_id != rep.id):
            await self._audit_refusal(actor, "not_allowed", claims, key)
            return self._refuse("refused_not_allowed", "error.not_allowed")
        storm = self.ctx.services.storm
        digest = str(claims.args[BATCH])
        batch = await storm.batch(digest, rep)
        if batch is None:
            return self._refuse("not_found", "error.not_found")
        outcomes: list[StormOutcome] = []
        for lead_id, owner_id in batch:
            lead = await self.ctx.store.get_lead(lead_id)
            as_claims = ActionClaims("reassign", lead_id, claims.audience, claims.expires_at)
            if lead is not None and not await self._allowed(rep, as_claims, lead):
                outcomes.append(StormOutcome(lead_name(lead), "skipped", why=t("storm.why.not_allowed", self.lang)))
                continue
            if lead is None:
                outcomes.append(StormOutcome(f"#{lead_id}", "skipped", why=t("storm.why.gone", self.lang)))
                continue
            outcomes.append(await self._reassign_escalated(lead, owner_id))
        await self.ctx.store.audit(f"rep:{rep.id}", "storm.reassigned", "outbox", digest[:120],
                                   {"moved": sum(o.outcome != "skipped" for o in outcomes),
                                    "skipped": sum(o.outcome == "skipped" for o in outcomes)})
        card = build_storm_result_card(outcomes, lang=self.lang, card_ref=actor.card_ref,
                                       link=storm.list_link(digest, claims.lead_id, rep.id))
        return ActionOutcome(True, "batch_reassigned", card.title, None, rep.id, card,
                             data={"outcomes": [(o.name, o.outcome, o.to_name, o.why) for o in outcomes]})

    async def _reassign_escalated(self, lead: dto.Lead, owner_id: int | None) -> StormOutcome:
        storm = self.ctx.services.storm
        name = lead_name(lead)
        why = await storm.why_not(lead, owner_id)
        if why is None:
            outcome, target = await self.flow.reassign_escalated(lead, owner_id, "manager")
            if outcome == "reassigned" and target is not None:
                return StormOutcome(name, "moved", to_name=target.name)
            if outcome in ("pooled", "deferred"):
                return StormOutcome(name, outcome)
            # Claimed (or moved) between the look and the conditional update: said as it is now.
            why = await storm.why_not(await self.ctx.store.get_lead(lead.id), owner_id) or t(
                "storm.why.no_candidate", self.lang)
        return StormOutcome(name, "skipped", why=why)

    def _moved_line(self, done: StormOutcome) -> str:
        key = {"moved": "storm.moved_line", "pooled": "storm.pooled_line"}.get(done.outcome, "storm.deferred_line")
        return t(key, self.lang, name=done.name, to=done.to_name)

    @action("snooze")
    async def _do_snooze(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        minutes = claims.args.get("minutes", 30)
        delay = min(timedelta(minutes=int(minutes)), timedelta(seconds=self.ctx.settings.sla.seconds("snooze_max")))
        await self.flow.snooze(lead, rep, delay)
        message = t("result.snoozed", self.lang, duration=t("duration.minutes", self.lang,
                                                             minutes=int(delay.total_seconds() // 60)))
        # The reminder stays a reminder, its 稍后提醒 spent: it says when the next one comes and
        # still offers 认领 while the lead is this rep's to claim.
        now = self.ctx.clock.now()
        fresh = await self.ctx.store.get_lead(lead.id) or lead
        mine = fresh.owner_id == rep.id and fresh.claimed_at is None
        audience = f"rep:{rep.id}"
        card = build_reminder_card(await self.flow.view_for(fresh), now=now, lang=self.lang, card_ref=actor.card_ref,
                                   buttons=self.flow.buttons.keys(fresh, audience, ("claim",), now) if mine else None,
                                   link=self.flow.buttons.link(lead.id, audience, now))
        card = replace(card, body=message, state="snoozed")
        return ActionOutcome(True, "snoozed", message, lead.id, rep.id, card)

    @action("merge")
    async def _do_merge(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        try:
            name = await self.flow.merge(lead, rep, claims.args)
        except MergeError:
            return await self._merge_repeat(lead, rep, claims, actor)
        message = t("result.merged", self.lang, name=name)
        return ActionOutcome(True, "merged", message, lead.id, rep.id,
                             self._retired(message, actor, state="merged", body=t("merge.undo_below", self.lang)))

    async def _merge_repeat(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, actor: Actor) -> ActionOutcome:
        """A second tap on 合并 (or a merge that cannot happen any more): said, never raised."""
        store = self.ctx.store
        into = await store.get_customer(int(claims.args["into"]))
        source = await store.get_customer(int(claims.args["from"]))
        if source is not None and source.status == "merged":
            target = await store.get_customer(source.merged_into) if source.merged_into else into
            done = t("error.already_done", self.lang)
            title = t("result.merged", self.lang, name=(target or into).display_name if (target or into) else "")
            return ActionOutcome(True, "already_done", done, lead.id, rep.id,
                                 self._retired(title, actor, state="merged", body=done))
        message = t("error.merge_refused", self.lang, name=into.display_name if into else "")
        return ActionOutcome(False, "refused_merge", message, lead.id, rep.id,
                             self._retired(message, actor, state="closed"))

    @action("distinct")
    async def _do_distinct(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        try:
            await self.flow.distinct(lead, rep, claims.args)
        except MergeError:
            pass  # the same customer twice: nothing to keep apart
        message = t("result.distinct", self.lang)
        return ActionOutcome(True, "distinct", message, lead.id, rep.id,
                             self._retired(message, actor, state="distinct"))

    @action("undo")
    async def _do_undo(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        try:
            await self.flow.undo(lead, rep, claims.args)
        except MergeError as e:
            if "already undone" in str(e):
                done = t("error.already_done", self.lang)
                return ActionOutcome(True, "already_done", done, lead.id, rep.id,
                                     self._retired(t("result.undone_merge", self.lang), actor, state="undone", body=done))
            message = t("error.undo_refused", self.lang)
            return ActionOutcome(False, "refused_undo", message, lead.id, rep.id,
                                 self._retired(message, actor, state="closed"))
        message = t("result.undone_merge", self.lang)
        return ActionOutcome(True, "undone", message, lead.id, rep.id, self._retired(message, actor, state="undone"))

    @action("reinstate")
    async def _do_reinstate(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                            actor: Actor) -> ActionOutcome:
        """The manager's 恢复派单 on the notice that a rep was sidelined after repeated misses."""
        router = self.ctx.services.router
        target_id = claims.args.get("rep")
        target = await self.ctx.store.get_rep(int(target_id)) if str(target_id).isdigit() else None
        if rep.role not in ("manager", "admin") or router is None or target is None:
            return self._refuse("refused_not_allowed", "error.not_allowed", lead.id)
        event = await router.reinstate(target.id, f"rep:{rep.id}")
        message = t("result.reinstated", self.lang, name=target.name)
        done = "" if event is not None else t("error.already_done", self.lang)
        return ActionOutcome(True, "reinstated" if event is not None else "already_done", message, lead.id, rep.id,
                             self._retired(message, actor, state="reinstated", body=done))

    @action("contact")
    async def _do_contact(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        await self.leads.first_contact(lead.id, f"rep:{rep.id}", params.get("how", "card"))
        return ActionOutcome(True, "contacted", t("error.already_done", self.lang), lead.id, rep.id)


def _lead_line(lead: dto.Lead) -> str:
    return " · ".join(x for x in (lead.name, lead.company) if x) or f"#{lead.id}"


def _has(key: str) -> bool:
    try:
        t(key, "zh")
        return True
    except KeyError:
        return False
