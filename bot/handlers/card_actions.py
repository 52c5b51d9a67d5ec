"""A tap on a card button, from either platform, as a neutral CardAction."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from bot.actions.service import ActionOutcome, Actor
from bot.cards.render_dingtalk import render_dingtalk_callback_reply
from bot.cards.render_wecom import render_wecom_template_card
from bot.cards.builders import build_notice_card
from bot.cards.i18n import t
from bot.cards.model import Button
from bot.events import CardAction
from bot.handlers import handles
from crm_bridge.outbox import NewOutboxItem, remember_response_code
from notifications.quiet_hours import REPLY
from notifications.sender import dedupe_id

if TYPE_CHECKING:
    from bot.context import AppContext


class TapAnswer:
    """What the platform route sends back synchronously for the tapped copy."""

    def __init__(self, outcome: ActionOutcome, wecom: dict[str, Any] | None, dingtalk: dict[str, Any] | None) -> None:
        self.outcome = outcome
        self._wecom = wecom
        self.dingtalk = dingtalk

    def wecom_update(self) -> dict[str, Any] | None:
        return self._wecom

    def dingtalk_callback_response(self) -> dict[str, Any] | None:
        return self.dingtalk


@handles(CardAction)
async def handle_tap_card(event: CardAction, ctx: "AppContext") -> TapAnswer:
    # Each tap brings a fresh single-use response_code for this copy: keep it for later updates.
    if event.platform == "wecom" and event.response_code:
        await remember_response_code(ctx.engine, event.card_ref, event.actor_id, event.response_code, ctx.clock.now())
    params = dict(event.params)
    outcome = await ctx.services["actions"].perform(
        event.key, Actor(event.platform, event.actor_id, event.card_ref), params=params)
    wecom = dingtalk = None
    if outcome.card is not None:
        card = outcome.card
        wecom = {"template_card": render_wecom_template_card(card, for_update=True)}
        # Each DingTalk copy is a card instance of its own recipient: the tapper's own view is
        # both the shared data and their private overlay.
        dingtalk = render_dingtalk_callback_reply(card, card)
    elif outcome.code == "taken":
        wecom = {"replace_name": outcome.message[:10]}
    if outcome.card is None and outcome.code != "taken":
        # No redrawn card to show the result (a refusal, a reassignment): it is said in a message.
        await _tell_actor(ctx, event, outcome)
    return TapAnswer(outcome, wecom, dingtalk)


async def _tell_actor(ctx: "AppContext", event: CardAction, outcome: ActionOutcome) -> None:
    """Refusals and missing evidence are said to the tapper in a message of their own; a gate
    refusal as a card whose 去补充 opens the H5 page with the evidence form."""
    outbox = ctx.services.get("outbox")
    if outbox is None:
        return
    digest = hashlib.sha256(f"{event.key}|{event.occurred_at.isoformat()}".encode()).hexdigest()[:24]
    key = f"tap:{event.platform}:{event.actor_id}:{digest}"
    link = str(outcome.data.get("link") or "")
    flow = ctx.services.get("flow")
    if link and flow is not None:
        card = build_notice_card(outcome.message, lang=ctx.lang, link=link, tone="warning", card_ref=dedupe_id(key),
                                 buttons=[Button(key="", text=t("gate.supply_button", ctx.lang), url=link)])
        await outbox.enqueue(NewOutboxItem(key=key, channel=event.platform, kind="card", recipient=event.actor_id,
                                           payload={**flow.payload_for(card, event.platform, event.actor_id),
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
    worker = ctx.services.get("delivery_worker")
    if worker is not None:
        worker.wake()
