"""Card -> WeCom (企业微信) message JSON: template_card, textcard, markdown.

The renderers return message bodies without recipients: the platform adapter adds ``touser``
(message/send) or ``userids`` (update_template_card). Limits, from WeCom's message/send doc as
quoted by WxJava, wechatpy and other SDKs ("建议不超过 N 个字" is a display width, so it is
measured in 字 with Latin letters counting half):

- template_card (conformance W10, wecom/94888, suspected: a recent copy calls longer limits,
  36/44/160/20/30/18, display recommendations; the reading that cannot lose a card is that the
  older, stricter ones may be refused, so leadbot cuts to them and the sandbox refuses beyond):
  main_title.title 26 字, main_title.desc 30 字, sub_title_text 112 字,
  source.desc 13 字, horizontal_content_list ≤6 items (keyname 5 字, value 26 字),
  jump_list ≤3 (title 13 字), button_list ≤6 (text 10 字, style 1–4, key ≤1024 B, unique),
  task_id [0-9A-Za-z_-@] ≤128 B (checked by the Card itself). text_notice needs card_action.
- textcard: title ≤128 chars, description ≤512 chars, url ≤2048 B, btntxt ≤4 chars.
- text ≤2048 B; markdown ≤2048 B for app messages, ≤4096 B for group robots.
"""

from __future__ import annotations

from typing import Any

from leadbot.i18n import t
from bot.cards.markup import html_text, markdown_text
from bot.cards.model import Button, Card
from bot.cards.render_text import headline, render_text
from bot.cards.text_limits import (
    fit_lines,
    one_line,
    truncate_chars,
    truncate_zi,
)

MAX_BUTTONS = 6
MAX_HORIZONTAL_ITEMS = 6
MAX_JUMPS = 3
TITLE_ZI = 26
DESC_ZI = 30
SUBTITLE_ZI = 112
SOURCE_ZI = 13
KEYNAME_ZI = 5
VALUE_ZI = 26
BUTTON_TEXT_ZI = 10
JUMP_TITLE_ZI = 13
TEXTCARD_TITLE_CHARS = 128
TEXTCARD_DESCRIPTION_CHARS = 512
TEXTCARD_BTNTXT_CHARS = 4
APP_MARKDOWN_MAX_BYTES = 2048
ROBOT_MARKDOWN_MAX_BYTES = 4096
# A heading longer than this is a data problem; cutting it keeps room for the details.
_HEADLINE_CHARS = 128
# One oversized field must not push every other field out of a size-limited message.
_LABEL_CHARS = 40
_LINE_CHARS = 300

# conformance W9 (wecom/94888, suspected): WeCom only knows styles 1–4, and its style gallery
# leaves open which of 3/4 is the negative colour. Reading chosen: any of 1–4 is a valid style,
# so neither can make WeCom refuse the card (the sandbox refuses anything else); the button's
# words carry its meaning, never the colour. 1 filled (primary), 2 plain, 3 red-ish.
_STYLE = {"primary": 1, "default": 2, "danger": 3}
# source.desc_color: 0 grey, 1 black, 2 red, 3 green.
_TONE_COLOUR = {"normal": 0, "warning": 1, "alert": 2, "good": 3}


# --- template_card ----------------------------------------------------------------------------

def _buttons(card: Card) -> list[Button]:
    """At most six buttons with unique keys: WeCom rejects a duplicate key."""
    seen: set[str] = set()
    out = []
    for b in card.buttons:
        if b.key and b.key in seen:
            continue
        seen.add(b.key)
        out.append(b)
    return out[:MAX_BUTTONS]


def _button_json(b: Button) -> dict[str, Any]:
    out: dict[str, Any] = {"text": truncate_zi(one_line(b.text), BUTTON_TEXT_ZI),
                           "style": _STYLE[b.style]}
    if b.url:
        out.update(type=1, url=b.url)
    else:
        out.update(type=0, key=b.key)
    return out


def _common(card: Card, card_type: str) -> dict[str, Any]:
    tc: dict[str, Any] = {"card_type": card_type}
    if card.badges:
        tc["source"] = {"desc": truncate_zi(one_line(" · ".join(card.badges)), SOURCE_ZI),
                        "desc_color": _TONE_COLOUR[card.tone]}
    main = {"title": truncate_zi(one_line(card.title), TITLE_ZI)}
    if card.subtitle:
        main["desc"] = truncate_zi(one_line(card.subtitle), DESC_ZI)
    tc["main_title"] = main
    shown = [f for f in card.fields if f.value][:MAX_HORIZONTAL_ITEMS]
    if shown:
        tc["horizontal_content_list"] = [
            {"keyname": truncate_zi(one_line(f.label), KEYNAME_ZI),
             "value": truncate_zi(one_line(f.value), VALUE_ZI)}
            for f in shown
        ]
    # Fields beyond the sixth, the body and the footer share the one long text slot.
    sep = t("sep.label", card.lang)
    overflow = [f"{one_line(f.label)}{sep}{one_line(f.value)}"
                for f in [f for f in card.fields if f.value][MAX_HORIZONTAL_ITEMS:]]
    extra = [*card.body.splitlines(), *overflow, *([card.footer] if card.footer else [])]
    if extra:
        tc["sub_title_text"] = truncate_zi("\n".join(extra), SUBTITLE_ZI)
    return tc


def _is_button_card(card: Card, for_update: bool) -> bool:
    # A button card needs a task_id and a button_list, in an update as in a send (wecom/94888;
    # conformance W7). An update that retires every button replaces the copy with a
    # text_notice (a callback card "can be updated into any template card type", wecom/94945),
    # whose card_action opens the H5 page; only a card without a link keeps the old greyed-out
    # form.
    if not card.card_ref:
        return False
    return bool(card.callback_buttons) or (for_update and not card.link)


def render_wecom_template_card(card: Card, *, for_update: bool = False) -> dict[str, Any]:
    """The ``template_card`` object alone.

    button_interaction when the card has callback buttons and a card_ref (for an update: when
    it has a card_ref; with no callback buttons left, ``replace_text`` shows the card's state on
    a greyed-out button). Otherwise text_notice, whose card_action opens ``card.link``, where
    the H5 page offers the same actions. Raises ValueError when neither is possible.
    """
    if _is_button_card(card, for_update):
        tc = _common(card, "button_interaction")
        tc["task_id"] = card.card_ref
        if card.link:
            tc["card_action"] = {"type": 1, "url": card.link}
        if card.callback_buttons:
            tc["button_list"] = [_button_json(b) for b in _buttons(card)]
        else:
            tc["replace_text"] = truncate_zi(t(f"state.{card.state}", card.lang), BUTTON_TEXT_ZI)
        return tc
    if not card.link:
        raise ValueError("a WeCom card needs card.card_ref (button card) or card.link "
                         "(text_notice card_action)")
    tc = _common(card, "text_notice")
    if for_update and card.card_ref:
        tc["task_id"] = card.card_ref  # the copy it replaces
    jumps = card.link_buttons[:MAX_JUMPS]
    if jumps:
        tc["jump_list"] = [{"type": 1, "title": truncate_zi(one_line(b.text), JUMP_TITLE_ZI),
                            "url": b.url} for b in jumps]
    tc["card_action"] = {"type": 1, "url": card.link}
    return tc


def render_wecom(card: Card, *, agent_id: int) -> dict[str, Any]:
    """message/send body (without ``touser``).

    A card that can be neither a button card (no card_ref) nor a text_notice (no link) goes out
    as plain text instead of failing: a lead must reach the rep even if config is incomplete.
    """
    if not (_is_button_card(card, False) or card.link):
        return render_wecom_text(card, agent_id=agent_id)
    return {"msgtype": "template_card", "agentid": agent_id,
            "template_card": render_wecom_template_card(card)}


def render_wecom_update(card: Card, *, agent_id: int | None = None,
                        response_code: str | None = None) -> dict[str, Any]:
    """message/update_template_card body (without ``userids``): a full card replacement.

    ``response_code`` (from the send response or the tap callback) is single-use; the adapter
    must store the new one the update returns. Raises ValueError when the card cannot be a
    template card: an update has no plain-text fallback.
    """
    body: dict[str, Any] = {}
    if agent_id is not None:
        body["agentid"] = agent_id
    if response_code is not None:
        body["response_code"] = response_code
    body["template_card"] = render_wecom_template_card(card, for_update=True)
    return body


# --- text and textcard ------------------------------------------------------------------------

def render_wecom_text(card: Card, *, agent_id: int | None = None) -> dict[str, Any]:
    """A text message (≤2048 B): for clients and plugins that show no cards."""
    body: dict[str, Any] = {"msgtype": "text"}
    if agent_id is not None:
        body["agentid"] = agent_id
    body["text"] = {"content": render_text(card)}
    return body


def _div(css: str, text: str, max_chars: int = 160) -> str:
    return f'<div class="{css}">{html_text(truncate_chars(one_line(text), max_chars))}</div>'


def render_wecom_textcard(card: Card, *, agent_id: int | None = None) -> dict[str, Any]:
    """A textcard: older clients and the WeChat plugin path show these when template cards fail.

    The description's lines are whole <div>s; lines are dropped from the end to fit 512 chars so
    that a cut never leaves half a tag. Without a link (textcard requires url) it falls back to
    text.
    """
    if not card.link:
        return render_wecom_text(card, agent_id=agent_id)
    sep = t("sep.label", card.lang)
    head = []
    if card.subtitle:
        head.append(_div("gray", card.subtitle))
    if card.badges:
        head.append(_div("highlight", " · ".join(card.badges), 60))
    lines = [_div("highlight" if f.alert else "normal", f"{f.label}{sep}{f.value}")
             for f in card.fields if f.value]
    lines += [_div("normal", line) for line in card.body.splitlines() if line.strip()]
    tail = [_div("gray", card.footer, 60)] if card.footer else []
    description = fit_lines(head, lines, tail, limit=TEXTCARD_DESCRIPTION_CHARS, sep="",
                            measure=len, cut=truncate_chars)
    btn = t("button.act" if card.callback_buttons else "button.details", card.lang)
    body: dict[str, Any] = {"msgtype": "textcard"}
    if agent_id is not None:
        body["agentid"] = agent_id
    body["textcard"] = {
        "title": truncate_chars(one_line(card.title), TEXTCARD_TITLE_CHARS),
        "description": description or html_text(truncate_chars(headline(card), 100)),
        "url": card.link,
        "btntxt": truncate_chars(btn, TEXTCARD_BTNTXT_CHARS),
    }
    return body


# --- markdown (group robot, app) --------------------------------------------------------------

def wecom_markdown_content(card: Card, *, max_bytes: int = ROBOT_MARKDOWN_MAX_BYTES) -> str:
    """WeCom markdown: **bold**, > quotes, <font color="info|comment|warning">, [text](url)."""
    sep = t("sep.label", card.lang)
    head = [f"**{markdown_text(truncate_chars(one_line(card.title), _HEADLINE_CHARS))}**"]
    if card.subtitle:
        subtitle = truncate_chars(one_line(card.subtitle), _HEADLINE_CHARS)
        head.append(f'<font color="comment">{markdown_text(subtitle)}</font>')
    if card.badges:
        badges = truncate_chars(" · ".join(card.badges), _HEADLINE_CHARS)
        head.append(f'<font color="warning">{markdown_text(badges)}</font>')
    body = []
    for f in card.fields:
        if not f.value:
            continue
        colour = "warning" if f.alert else "comment"
        label = truncate_chars(one_line(f.label), _LABEL_CHARS)
        value = truncate_chars(one_line(f.value), _LINE_CHARS)
        body.append(f"> {markdown_text(label)}{sep}"
                    f'<font color="{colour}">{markdown_text(value)}</font>')
    body += [markdown_text(truncate_chars(line, _LINE_CHARS)) for line in card.body.splitlines()]
    if card.footer:
        footer = truncate_chars(one_line(card.footer), _LINE_CHARS)
        body.append(f'<font color="comment">{markdown_text(footer)}</font>')
    tail = []
    if card.link:
        label = " / ".join(b.text for b in card.callback_buttons) or t("button.details", card.lang)
        tail.append(f"[{markdown_text(label)}]({card.link})")
    return fit_lines(head, body, tail, limit=max_bytes)


def render_wecom_markdown(card: Card, *, max_bytes: int = ROBOT_MARKDOWN_MAX_BYTES
                          ) -> dict[str, Any]:
    """Group-robot markdown message (≤4096 B; pass max_bytes=2048 for app messages).

    Robot messages cannot call back, so the card's actions become one link to the H5 page.
    """
    return {"msgtype": "markdown",
            "markdown": {"content": wecom_markdown_content(card, max_bytes=max_bytes)}}

