"""A tap on a card button, from either platform, as a neutral CardAction.

Every tap is answered from the lead as it is now: the tapped copy is redrawn for its own purpose
(an offer, a reminder, an escalation) whatever the action's outcome, with the tap's own code.
In time, the platform route puts that card in its synchronous answer (WeCom's passive reply
inside 5 s, DingTalk's callback answer inside 2 s); too late for that, the route calls
``TapAnswer.after_deadline`` and the same card goes out as an update (WeCom with the tap's
ResponseCode, DingTalk through the card update API). reference/conformance.md W1, W2, D4.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bot.actions.service import ActionOutcome, Actor
from bot.cards.model import Button, Card
from bot.cards.builders import build_notice_card
from leadbot.i18n import t
from bot.events import CardAction
from bot.handlers import handles
from bot.platforms.copies import copy_rules
from store.outbox import NewOutboxItem, remember_response_code
from notifications.quiet_hours import REPLY
from notifications.sender import dedupe_id

if TYPE_CHECKING:
    from bot.context import AppContext

# Outcomes the tapped copy itself states once redrawn (an escalation reads "已改派给 钱伟"): a
# message saying it again would be noise on the manager's phone.
SAID_BY_THE_COPY = ("reassigned", "moved", "pooled", "deferred")


class TapAnswer:
    """What the platform route sends back synchronously for the tapped copy: `tap_reply()` is
    the tapped platform's own answer (bot/platforms/copies.py), read by that platform's route."""

    def __init__(self, outcome: ActionOutcome, reply: dict[str, Any] | None,
                 *, ctx: "AppContext | None" = None, event: CardAction | None = None, card: Card | None = None,
                 copy_id: int | None = None) -> None:
        self.outcome = outcome
        self._reply = reply
        self._ctx = ctx
        self._event = event
        self.card = card
        self._copy_id = copy_id

    def tap_reply(self) -> dict[str, Any] | None:
        return self._reply

    async def after_deadline(self) -> None:
        """The synchronous answer did not make it in time: the tapped copy is updated instead."""
        if self._ctx is None or self._event is None or self.card is None:
            return
        await _update_tapped_copy(self._ctx, self._event, self.card, self._copy_id, self.outcome.lead_id)


@handles(CardAction)
async def handle_tap_card(event: CardAction, ctx: "AppContext") -> TapAnswer:
    # Each tap brings a fresh single-use response_code (valid 72 h) for this copy: keep it for
    # the copy's next update.
    rules = copy_rules(event.platform)
    if rules.updates_spend_a_code and event.response_code:
        await remember_response_code(ctx.engine, event.card_ref, event.actor_id, event.response_code, ctx.clock.now())
    params = dict(event.params)
    outcome = await ctx.services.actions.perform(
        event.key, Actor(event.platform, event.actor_id, event.card_ref), params=params)
    card, copy_id = await _tapped_card(ctx, event, outcome)
    reply = rules.tap_reply(card, taken_by=outcome.message if outcome.code == "taken" else "")
    if outcome.card is None and outcome.code != "taken" and not (card is not None and outcome.code in SAID_BY_THE_COPY):
        # No redrawn card to show the result (a refusal): it is said in a message.
        await _tell_actor(ctx, event, outcome)
    return TapAnswer(outcome, reply, ctx=ctx, event=event, card=card, copy_id=copy_id)


async def _tapped_card(ctx: "AppContext", event: CardAction, outcome: ActionOutcome) -> tuple[Card | None, int | None]:
    """The tapped copy as it should look now: the action's own card where it made one for an
    offer, else the copy redrawn from the lead's current state for its purpose."""
    outbox, flow = ctx.services.outbox, ctx.services.flow
    copy = await outbox.card_copy(event.platform, event.card_ref, event.actor_id) if outbox and event.card_ref else None
    card = outcome.card
    if copy is not None and flow is not None and outcome.lead_id is not None and card is None:
        lead = await ctx.store.get_lead(outcome.lead_id)
        rep = await ctx.store.rep_by_platform_id(event.platform, event.actor_id)
        if lead is not None and rep is not None:
            card = await flow.card_for_copy(lead, rep, copy) or card
    if card is None:
        return None, copy.id if copy else None
    if not card.link and not card.callback_buttons and outcome.lead_id is not None and flow is not None:
        # A card with nothing left to tap replaces a button card as a text_notice, which needs
        # somewhere to open (conformance W7): the lead's H5 page.
        rep = await ctx.store.rep_by_platform_id(event.platform, event.actor_id)
        if rep is not None:
            card = replace(card, link=flow.buttons.link(outcome.lead_id, f"rep:{rep.id}", ctx.clock.now()))
    if event.card_ref and card.card_ref != event.card_ref:
        card = replace(card, card_ref=event.card_ref)
    if copy is not None and copy.id is not None and flow is not None:
        await outbox.set_shown(copy.id, copy_rules(event.platform).shown(card), ctx.clock.now())
    return card, copy.id if copy else None


async def _update_tapped_copy(ctx: "AppContext", event: CardAction, card: Card, copy_id: int | None,
                              lead_id: int | None) -> None:
    outbox, flow = ctx.services.outbox, ctx.services.flow
    if outbox is None or flow is None or not event.card_ref:
        return
    now = ctx.clock.now()
    code = ""
    if copy_rules(event.platform).updates_spend_a_code:
        # The tap's own code, unless a change of the lead already used it to redraw this copy.
        code = event.response_code or ""
        if not code or copy_id is None or not await outbox.take_code(copy_id, code, now):
            ctx.log.info("tap.late_answer_skipped", platform=event.platform, reason="code used")
            return
    digest = hashlib.sha256(f"{event.key}|{event.occurred_at.isoformat()}".encode()).hexdigest()[:24]
    rep = await ctx.store.rep_by_platform_id(event.platform, event.actor_id)
    await outbox.enqueue(NewOutboxItem(
        key=f"tap:{event.platform}:{event.actor_id}:{digest}:late", channel=event.platform, kind="card_update",
        recipient=event.actor_id, payload=flow.update_payload(card, event.platform, event.actor_id, response_code=code),
        rep_id=rep.id if rep else None, lead_id=lead_id, urgent=True))
    worker = ctx.services.delivery_worker
    if worker is not None:
        worker.wake()


async def _tell_actor(ctx: "AppContext", event: CardAction, outcome: ActionOutcome) -> None:
    """Refusals and missing evidence are said to the tapper in a message of their own; a gate
    refusal as a card whose 去补充 opens the H5 page with the evidence form."""
    outbox = ctx.services.outbox
    if outbox is None:
        return
    digest = hashlib.sha256(f"{event.key}|{event.occurred_at.isoformat()}".encode()).hexdigest()[:24]
    key = f"tap:{event.platform}:{event.actor_id}:{digest}"
    link = str(outcome.data.get("link") or "")
    flow = ctx.services.flow
    if link and flow is not None:
        # A copy of kind "gate" (with the stage it waits for): once the evidence is in and the
        # lead has moved on, it is redrawn to say so instead of still asking (Flow.card_for_copy).
        card = build_notice_card(outcome.message, lang=ctx.lang, link=link, tone="warning", card_ref=dedupe_id(key),
                                 buttons=[Button(key="", text=t("gate.supply_button", ctx.lang), url=link)],
                                 kind="gate")
        meta = {"stage": str(outcome.data.get("stage") or "")}
        await outbox.enqueue(NewOutboxItem(key=key, channel=event.platform, kind="card", recipient=event.actor_id,
                                           payload={**flow.payload_for(card, event.platform, event.actor_id, meta),
                                                    REPLY: True},
                                           lead_id=outcome.lead_id, urgent=True))
        _wake(ctx)
        return
    await outbox.enqueue(NewOutboxItem(key=f"tap:{event.platform}:{event.actor_id}:{digest}", channel=event.platform,
                                       kind="text", recipient=event.actor_id,
                                       payload={"text": outcome.message, REPLY: True}, lead_id=outcome.lead_id,
                                       urgent=True))
    _wake(ctx)


def _wake(ctx: "AppContext") -> None:
    worker = ctx.services.delivery_worker
    if worker is not None:
        worker.wake()
