"""What each platform allows with a card it has delivered, by platform name.

The journey and the tap handler say what they want (send this card, redraw that copy, answer
this tap); the rules here say how the platform does it (reference/conformance.md W1, W2, D4):

- WeCom updates a copy only by spending a single-use response_code (one from the send, one
  from each tap, each valid 72 h), so a copy is redrawn only when its headline changes and a
  change that is only a clock is not worth a code.
- DingTalk updates a copy by its outTrackId as often as needed, so every field counts.

A third platform is one more `CopyRules` in `COPY_RULES`; nothing outside bot/platforms/ asks
"is this WeCom".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Mapping

from bot.cards.model import Card, headline
from bot.cards.render_dingtalk import render_dingtalk_callback_reply, render_dingtalk_card
from bot.cards.render_wecom import render_wecom_template_card


class CopyRules(ABC):
    """One platform's rules for its card copies (subclassed once per platform)."""

    name = ""
    # An update spends a single-use code the copy must still hold (WeCom); else updates are free.
    updates_spend_a_code = False

    def shown(self, card: Card) -> str:
        """What a copy shows, as a digest: a change that leaves it as it is sends no update. Where
        updates cost a code only the headline counts (title, subtitle, state, which buttons,
        badges), so a field changing (a stage name) does not spend a copy's only code."""
        return headline(card, with_fields=not self.updates_spend_a_code)

    @property
    def redraws_for_the_clock(self) -> bool:
        """Whether a copy is redrawn when only time moved (a countdown): not worth a code."""
        return not self.updates_spend_a_code

    @abstractmethod
    def card_payload(self, card: Card, recipient: str, *, template_id: str = "") -> dict[str, Any]:
        """The platform part of a new card's outbox payload."""

    @abstractmethod
    def update_payload(self, card: Card, recipient: str, *, response_code: str = "") -> dict[str, Any]:
        """A card_update row's payload for one delivered copy (its card_ref is the card's)."""

    @abstractmethod
    def tap_reply(self, card: Card | None, *, taken_by: str = "") -> dict[str, Any] | None:
        """The synchronous answer to a tap: the tapped copy redrawn, or with no card to show,
        whatever the platform can say of who took the lead (None: nothing)."""


class WeComCopies(CopyRules):
    name = "wecom"
    updates_spend_a_code = True

    def card_payload(self, card: Card, recipient: str, *, template_id: str = "") -> dict[str, Any]:
        return {"wecom_card": render_wecom_template_card(card)}

    def update_payload(self, card: Card, recipient: str, *, response_code: str = "") -> dict[str, Any]:
        # The whole new card, with the code it spends (update_template_card).
        wecom_card = render_wecom_template_card(card, for_update=True)
        wecom_card["task_id"] = card.card_ref
        return {"response_code": response_code, "wecom_card": wecom_card}

    def tap_reply(self, card: Card | None, *, taken_by: str = "") -> dict[str, Any] | None:
        if card is not None:
            return {"template_card": render_wecom_template_card(card, for_update=True)}  # passive reply
        if taken_by:
            return {"replace_name": taken_by[:10]}  # the greyed button's text holds 10 characters
        return None


class DingTalkCopies(CopyRules):
    name = "dingtalk"

    def card_payload(self, card: Card, recipient: str, *, template_id: str = "") -> dict[str, Any]:
        return {"dingtalk_card": {"template_id": template_id, **_card_data(render_dingtalk_card(card, [recipient]))}}

    def update_payload(self, card: Card, recipient: str, *, response_code: str = "") -> dict[str, Any]:
        # The card data by outTrackId; no code involved.
        return {"out_track_id": card.card_ref, **_card_data(render_dingtalk_card(card, [recipient]))}

    def tap_reply(self, card: Card | None, *, taken_by: str = "") -> dict[str, Any] | None:
        # Each DingTalk copy is a card instance of its own recipient: the tapper's own view is
        # both the shared data and their private overlay. With no card there is no greyed-button
        # form: the copy waits for its next update.
        return render_dingtalk_callback_reply(card, card) if card is not None else None


COPY_RULES: Mapping[str, CopyRules] = {
    rules.name: rules for rules in (WeComCopies(), DingTalkCopies())
}


def copy_rules(platform: str) -> CopyRules:
    """The rules of a platform by name; an unknown name is a programming error."""
    try:
        return COPY_RULES[platform]
    except KeyError:
        raise ValueError(f"no card rules for platform {platform!r}; known: {', '.join(COPY_RULES)}") from None


def _card_data(rendered: Mapping[str, Any]) -> dict[str, Any]:
    """render_dingtalk_card's shape -> the outbox payload's (card_data / private_data)."""
    out: dict[str, Any] = {"card_data": rendered.get("cardData", {})}
    if rendered.get("privateData"):
        out["private_data"] = rendered["privateData"]
    return out
