"""The one place a tap becomes a change: card buttons (WeCom, DingTalk), the H5 page and text
commands all call ActionService.perform, so every path checks the same token, the same actor and
the same permissions, and applies the change exactly once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Protocol

from bot.actions.tokens import ActionClaims, ActionSigner, TokenError
from bot.cards.i18n import t
from bot.cards.model import Card
from crm_bridge import dto
from crm_bridge.leads import LeadActions, stages_from_settings

if TYPE_CHECKING:
    from bot.context import AppContext


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
    """After-effects of actions (card copies, timers, routing); implemented in bot/flow.py."""

    async def after_claim(self, lead: dto.Lead, rep: dto.Rep, skip: tuple[str, str] | None = None) -> Card | None: ...

    async def after_pass(self, lead: dto.Lead, rep: dto.Rep, reason: str) -> None: ...

    async def after_advance(self, lead: dto.Lead, rep: dto.Rep, from_stage: str, to_stage: str,
                            skip: tuple[str, str] | None = None) -> Card | None: ...

    async def reassign(self, lead: dto.Lead, actor: dto.Rep, to_rep_id: int | None, reason: str) -> dto.Rep | None: ...

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
        lead = await self.ctx.store.get_lead(claims.lead_id)
        if lead is None:
            return self._refuse("not_found", "error.not_found", claims.lead_id)
        rep = await self._resolve_actor(actor, claims)
        if rep is None or not await self._allowed(rep, claims, lead):
            await self._audit_refusal(actor, "not_allowed", claims, key)
            return self._refuse("refused_not_allowed", "error.not_allowed", lead.id)
        handler: Callable[..., Awaitable[ActionOutcome]] = getattr(self, f"_do_{claims.action}", None)  # type: ignore[assignment]
        if handler is None:
            return self._refuse("refused_unknown", "error.not_allowed", lead.id)
        outcome = await handler(lead, rep, claims, dict(params or {}), actor)
        self.ctx.log.info("action.done", action=claims.action, lead_id=lead.id, rep_id=rep.id,
                          code=outcome.code, platform=actor.platform)
        return outcome

    # ---- actions ------------------------------------------------------------------------------

    async def _do_claim(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        result = await self.leads.claim(lead.id, rep.id, f"rep:{rep.id}")
        if result.outcome == "claimed" and result.lead is not None:
            card = await self.flow.after_claim(result.lead, rep, skip=actor.tapped_copy)
            return ActionOutcome(True, "claimed", t("result.claimed", self.lang), lead.id, rep.id, card)
        if result.outcome == "already_yours":
            return ActionOutcome(True, "already_yours", t("error.already_done", self.lang), lead.id, rep.id)
        if result.outcome == "taken":
            names = await self.leads.rep_names([result.owner_id] if result.owner_id else [])
            return ActionOutcome(False, "taken", t("error.already_claimed", self.lang,
                                                   name=names.get(result.owner_id or 0, "?")), lead.id, rep.id)
        return self._refuse(result.outcome, "error.not_found", lead.id)

    async def _do_pass(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        reason = (params.get("reason") or claims.args.get("reason") or "declined")[:200]
        released = await self.leads.release(lead.id, rep.id, reason, f"rep:{rep.id}")
        if released is None:
            return ActionOutcome(False, "already_done", t("error.already_done", self.lang), lead.id, rep.id)
        await self.flow.after_pass(released, rep, reason)
        return ActionOutcome(True, "passed", t("result.passed", self.lang), lead.id, rep.id)

    async def _do_advance(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        if lead.owner_id != rep.id and rep.role not in ("manager", "admin"):
            return self._refuse("refused_not_allowed", "error.not_allowed", lead.id)
        evidence = {k[len("evidence."):]: v for k, v in params.items() if k.startswith("evidence.") and v}
        expected = claims.args.get("from")
        result = await self.leads.advance(lead.id, self.stages, f"rep:{rep.id}",
                                          expected_stage=expected if isinstance(expected, str) else None,
                                          evidence=evidence)
        if result.outcome == "missing_evidence":
            names = t("sep.list", self.lang).join(t(f"gate.{g}", self.lang) if _has(f"gate.{g}") else g
                                                  for g in result.missing)
            return ActionOutcome(False, "missing_evidence",
                                 t("error.missing_gate", self.lang, stage=result.to_stage, evidence=names),
                                 lead.id, rep.id, data={"missing": list(result.missing), "stage": result.to_stage})
        if result.outcome in ("stale", "not_next"):
            return ActionOutcome(False, "already_done", t("error.already_done", self.lang), lead.id, rep.id)
        if result.outcome != "advanced" or result.lead is None:
            return self._refuse(result.outcome, "error.not_found", lead.id)
        card = await self.flow.after_advance(result.lead, rep, result.from_stage, result.to_stage,
                                              skip=actor.tapped_copy)
        return ActionOutcome(True, "advanced", t("stage.moved", self.lang, stage=result.to_stage), lead.id,
                             rep.id, card, data={"stage": result.to_stage})

    async def _do_reassign(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        target = claims.args.get("to") or params.get("to")
        to_rep_id = int(target) if target not in (None, "") and str(target).isdigit() else None
        new_owner = await self.flow.reassign(lead, rep, to_rep_id, params.get("reason", "manager"))
        if new_owner is None:
            return ActionOutcome(False, "no_candidate", t("error.not_allowed", self.lang), lead.id, rep.id)
        return ActionOutcome(True, "reassigned", t("result.reassigned", self.lang, name=new_owner.name),
                             lead.id, rep.id)

    async def _do_snooze(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        minutes = claims.args.get("minutes", 30)
        delay = min(timedelta(minutes=int(minutes)), timedelta(seconds=self.ctx.settings.sla.seconds("snooze_max")))
        await self.flow.snooze(lead, rep, delay)
        return ActionOutcome(True, "snoozed", t("result.snoozed", self.lang,
                                                duration=t("duration.minutes", self.lang,
                                                           minutes=int(delay.total_seconds() // 60))),
                             lead.id, rep.id)

    async def _do_merge(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        name = await self.flow.merge(lead, rep, claims.args)
        return ActionOutcome(True, "merged", t("result.merged", self.lang, name=name), lead.id, rep.id)

    async def _do_distinct(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        await self.flow.distinct(lead, rep, claims.args)
        return ActionOutcome(True, "distinct", t("result.distinct", self.lang), lead.id, rep.id)

    async def _do_undo(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        await self.flow.undo(lead, rep, claims.args)
        return ActionOutcome(True, "undone", t("result.undone", self.lang), lead.id, rep.id)

    async def _do_contact(self, lead: dto.Lead, rep: dto.Rep, claims: ActionClaims, params: dict,
                  actor: Actor) -> ActionOutcome:
        await self.leads.first_contact(lead.id, f"rep:{rep.id}", params.get("how", "card"))
        return ActionOutcome(True, "contacted", t("error.already_done", self.lang), lead.id, rep.id)


def _has(key: str) -> bool:
    try:
        t(key, "zh")
        return True
    except KeyError:
        return False
