"""Card -> DingTalk (钉钉) JSON: interactive cards, work-notice action cards, robot messages.

Interactive cards (createAndDeliver / PUT /v1.0/card/instances) take a template designed in
DingTalk's card builder plus ``cardParamMap``: string keys to **string** values of at most 1 KB,
so lists travel as JSON strings. The parameters this renderer fills are the contract with the
template (``card_template_id`` in config):

    kind, state, state_text, tone, lang, title, subtitle, body, footer, link,
    badges   JSON ["沉默客户", ...]
    fields   JSON [{"label": ..., "value": ..., "alert": bool}, ...]
    buttons  JSON [{"key": "claim:<token>", "text": ..., "style": "primary", "url": ""}, ...]
    has_buttons "true" | "false"
    markdown the whole card as DingTalk markdown, for a one-variable template

Button keys carry tokens bound to one recipient, so when recipients are given the buttons go in
``privateData`` (per user) and the shared data keeps only link buttons that anyone may open.
A user's private data is only what differs from the shared data (their buttons always), and it
is kept within DingTalk's 1 KB per user (conformance D11), measured as sent.

Work notices and robot messages cannot call back: their buttons are URLs (the H5 pages).
DingTalk markdown needs a blank line between lines, has no tables, and shows HTML as a blank on
mobile, so user text is neutralised rather than trusted.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable, Mapping, Sequence

from leadbot.i18n import t
from bot.cards.markup import markdown_text
from bot.cards.model import Button, Card
from bot.cards.render_text import render_text
from bot.cards.text_limits import (
    compact_json,
    fit_json_list,
    fit_lines,
    one_line,
    truncate_chars,
    truncate_utf8,
    utf8_len,
)

PARAM_VALUE_MAX_BYTES = 1024
# conformance D11 (dt/create-and-deliver-cards; "per user" is suspected): cardParamMap keys are
# at most 100 B and values 1 KB; one user's privateData at most 1 KB. Reading chosen (the one
# that cannot get a card refused): the 1 KB counts that user's whole entry as it is sent, the
# UTF-8 bytes of compact {"cardParamMap": {...}} with its JSON escaping (the client sends
# exactly this: bot.platforms.json_body), not just the sum of the values.
PARAM_KEY_MAX_BYTES = 100
PRIVATE_DATA_MAX_BYTES = 1024
ACTIONCARD_TITLE_CHARS = 64
ACTIONCARD_BUTTON_TITLE_CHARS = 20
ACTIONCARD_BTN_JSON_MAX_CHARS = 1000
WORK_NOTICE_MSG_MAX_BYTES = 2048
ROBOT_MAX_ACTION_BUTTONS = 5
_FIELD_LABEL_CHARS = 40
_FIELD_VALUE_CHARS = 200
_MARKDOWN_LINE_BREAK = "\n\n"
# A heading longer than this is a data problem; cutting it keeps room for the details.
_HEADLINE_CHARS = 128

Recipients = Mapping[str, Card | Sequence[Button]] | Iterable[str] | None


# --- interactive card --------------------------------------------------------------------------

def _param(text: str) -> str:
    return truncate_utf8(text, PARAM_VALUE_MAX_BYTES)


def _buttons_param(buttons: Sequence[Button]) -> dict[str, str]:
    # Keys are never shortened (that would break the signature); a list that does not fit loses
    # its last buttons instead, which builders order least important last.
    items = [{"key": b.key, "text": truncate_chars(one_line(b.text), 20), "style": b.style,
              "url": b.url} for b in buttons]
    return {"buttons": fit_json_list(items, PARAM_VALUE_MAX_BYTES),
            "has_buttons": "true" if buttons else "false"}


def _shrink_field(item: dict[str, Any]) -> dict[str, Any]:
    return {"label": truncate_chars(item["label"], _FIELD_LABEL_CHARS),
            "value": truncate_chars(item["value"], _FIELD_VALUE_CHARS),
            "alert": item["alert"]}


def dingtalk_card_params(card: Card, buttons: Sequence[Button] | None = None) -> dict[str, str]:
    """The ``cardParamMap`` of a card: every value a str of at most 1 KB.

    ``buttons`` overrides the card's own (the shared map of a card whose buttons are private).
    """
    if buttons is not None:
        card = replace(card, buttons=tuple(buttons))
    fields = [{"label": one_line(f.label), "value": one_line(f.value), "alert": f.alert}
              for f in card.fields if f.value]
    params = {
        "kind": card.kind,
        "state": card.state,
        "state_text": t(f"state.{card.state}", card.lang),
        "tone": card.tone,
        "lang": card.lang,
        "title": _param(one_line(card.title)),
        "subtitle": _param(one_line(card.subtitle)),
        "body": _param(card.body),
        "footer": _param(one_line(card.footer)),
        "link": card.link,
        "badges": fit_json_list(list(card.badges), PARAM_VALUE_MAX_BYTES),
        "fields": fit_json_list(fields, PARAM_VALUE_MAX_BYTES, shrink=_shrink_field),
        "markdown": dingtalk_markdown(card, max_bytes=PARAM_VALUE_MAX_BYTES),
    }
    params.update(_buttons_param(card.buttons))
    return params


# Every user's private data carries these, so each update replaces the buttons the user had
# (a claim button must not outlive the claim), even when they now equal the shared ones.
_ALWAYS_PRIVATE = ("buttons", "has_buttons")
# What goes first when one user's private data is over 1 KB: the largest parts of their own view,
# which the shared data still shows in its own form (the H5 link keeps every detail reachable).
_DROP_FIRST = ("markdown", "body", "fields", "badges", "footer", "title", "subtitle", "link")


def private_data_bytes(params: Mapping[str, str]) -> int:
    """Bytes of one user's privateData entry as it is sent (see PRIVATE_DATA_MAX_BYTES)."""
    return utf8_len(compact_json({"cardParamMap": params}))


def _private_params(spec: Card | Sequence[Button], shared: Mapping[str, str]) -> dict[str, str]:
    """One user's overlay on ``shared``: their buttons, and for a whole Card (their own view:
    full phone, "你已认领") the keys whose value differs from the shared one. Sending the whole
    card here was over DingTalk's 1 KB per user. Fitted to PRIVATE_DATA_MAX_BYTES: view keys
    are dropped in _DROP_FIRST order, then the last buttons (builders order them least
    important last); the card itself is always delivered."""
    if isinstance(spec, Card):
        own = dingtalk_card_params(spec)
        overlay = {k: v for k, v in own.items() if k in _ALWAYS_PRIVATE or shared.get(k) != v}
        buttons = list(spec.buttons)
    else:
        buttons = list(spec)
        overlay = _buttons_param(buttons)
    for key in _DROP_FIRST:
        if private_data_bytes(overlay) <= PRIVATE_DATA_MAX_BYTES:
            break
        overlay.pop(key, None)
    while private_data_bytes(overlay) > PRIVATE_DATA_MAX_BYTES and buttons:
        buttons.pop()
        overlay.update(_buttons_param(buttons))
    return overlay


def _per_user(card: Card, recipients: Recipients) -> dict[str, Card | Sequence[Button]]:
    if recipients is None:
        return {}
    if isinstance(recipients, Mapping):
        return dict(recipients)
    return {uid: card.buttons for uid in recipients}


def render_dingtalk_card(card: Card, recipients: Recipients = None) -> dict[str, Any]:
    """``outTrackId`` + ``cardData`` (+ ``privateData``) for createAndDeliver or the PUT update.

    ``recipients``:
    - None: everyone sees ``card.buttons`` (no private data);
    - an iterable of userIds: only those users see ``card.buttons``;
    - a mapping userId -> Buttons (tokens bound to that user) or -> a whole Card (that user's
      own view, e.g. the claimer's card with the full phone number).
    Everyone else sees the shared data with link buttons only. The adapter adds cardTemplateId,
    openSpaceId and the deliver models. When updating, pass every recipient again so stale
    private buttons (a claim button after the lead was claimed) are replaced too.
    """
    if not card.card_ref:
        raise ValueError("a DingTalk interactive card needs card.card_ref (its outTrackId)")
    per_user = _per_user(card, recipients)
    shared_buttons = card.buttons if recipients is None else card.link_buttons
    shared = dingtalk_card_params(card, shared_buttons)
    body: dict[str, Any] = {"outTrackId": card.card_ref, "cardData": {"cardParamMap": shared}}
    if per_user:
        body["privateData"] = {uid: {"cardParamMap": _private_params(spec, shared)}
                               for uid, spec in per_user.items()}
    return body


def render_dingtalk_callback_reply(card: Card, actor: Card | Sequence[Button] = ()
                                   ) -> dict[str, Any]:
    """The synchronous answer (within 2 s) to a card tap: the new shared view, and the tapping
    user's own overlay (their Card, or just their buttons; an empty list clears the buttons
    they just used)."""
    shared = dingtalk_card_params(card, card.link_buttons)
    return {
        "cardData": {"cardParamMap": shared},
        "userPrivateData": {"cardParamMap": _private_params(actor, shared)},
        # The private data is the user's whole overlay (only what differs): it replaces what they
        # had, so a key that now equals the shared value does not keep an old private one.
        "cardUpdateOptions": {"updateCardDataByKey": True, "updatePrivateDataByKey": False},
    }


# --- markdown ------------------------------------------------------------------------------------

def _action_links(card: Card) -> list[tuple[str, str]]:
    """Buttons as (title, url): URL buttons as they are, callback actions as one H5 link."""
    links = [(b.text, b.url) for b in card.link_buttons]
    if card.link and (card.callback_buttons or not links):
        key = "button.act" if card.callback_buttons else "button.details"
        links.append((t(key, card.lang), card.link))
    return links


def dingtalk_markdown(card: Card, *, max_bytes: int = WORK_NOTICE_MSG_MAX_BYTES,
                      with_link: bool = True) -> str:
    """DingTalk markdown: a heading, bold labels, blank lines between lines, no HTML."""
    sep = t("sep.label", card.lang)
    head = [f"### {markdown_text(truncate_chars(one_line(card.title), _HEADLINE_CHARS))}"]
    if card.subtitle:
        head.append(markdown_text(truncate_chars(one_line(card.subtitle), _HEADLINE_CHARS)))
    if card.badges:
        badges = truncate_chars(" · ".join(card.badges), _HEADLINE_CHARS)
        head.append(f"**{t('badges', card.lang, badges=markdown_text(badges))}**")
    body = []
    for f in card.fields:
        if not f.value:
            continue
        value = markdown_text(truncate_chars(one_line(f.value), _FIELD_VALUE_CHARS))
        label = markdown_text(truncate_chars(one_line(f.label), _FIELD_LABEL_CHARS))
        body.append(f"**{label}**{sep}" + (f"**{value}**" if f.alert else value))
    body += [markdown_text(truncate_chars(line, _FIELD_VALUE_CHARS))
             for line in card.body.splitlines() if line.strip()]
    if card.footer:
        footer = truncate_chars(one_line(card.footer), _FIELD_VALUE_CHARS)
        body.append(f"> {markdown_text(footer)}")
    tail = []
    if with_link and card.link:
        label = " / ".join(b.text for b in card.callback_buttons) or t("button.details", card.lang)
        tail.append(f"[{markdown_text(label)}]({card.link})")
    return fit_lines(head, body, tail, limit=max_bytes, sep=_MARKDOWN_LINE_BREAK)


def _fit_msg(build: Any, limit: int) -> dict[str, Any]:
    """Builds a message whose compact JSON stays within ``limit`` bytes.

    ``build(budget)`` makes the message with a markdown/text budget; JSON escaping of newlines
    and quotes grows the text, so the budget shrinks by the excess until it fits.
    """
    budget = limit
    msg = build(budget)
    excess = utf8_len(compact_json(msg)) - limit
    while excess > 0 and budget > 0:
        budget = max(0, budget - excess)
        msg = build(budget)
        excess = utf8_len(compact_json(msg)) - limit
    return msg


# --- work notice (asyncsend_v2 msg) ------------------------------------------------------------

def _title(card: Card) -> str:
    return truncate_chars(one_line(card.title), ACTIONCARD_TITLE_CHARS)


def _btn_json_list(links: list[tuple[str, str]]) -> list[dict[str, str]]:
    items = [{"title": truncate_chars(one_line(title), ACTIONCARD_BUTTON_TITLE_CHARS),
              "action_url": url} for title, url in links]
    while items and len(compact_json(items)) > ACTIONCARD_BTN_JSON_MAX_CHARS:
        items.pop()
    return items


def render_dingtalk_actioncard(card: Card) -> dict[str, Any]:
    """Work-notice ``msg`` of type action_card (title ≤64, one button ≤20 chars or a button
    list, whole msg ≤2048 B). Without any link it falls back to a markdown msg."""
    links = _action_links(card)
    if not links:
        return render_dingtalk_markdown_msg(card)

    def build(budget: int) -> dict[str, Any]:
        ac: dict[str, Any] = {"title": _title(card),
                              "markdown": dingtalk_markdown(card, max_bytes=budget,
                                                            with_link=False)}
        if len(links) == 1:
            ac["single_title"] = truncate_chars(one_line(links[0][0]),
                                                ACTIONCARD_BUTTON_TITLE_CHARS)
            ac["single_url"] = links[0][1]
        else:
            ac["btn_orientation"] = "1" if len(links) == 2 else "0"
            ac["btn_json_list"] = _btn_json_list(links)
        return {"msgtype": "action_card", "action_card": ac}

    return _fit_msg(build, WORK_NOTICE_MSG_MAX_BYTES)


def render_dingtalk_markdown_msg(card: Card) -> dict[str, Any]:
    """Work-notice ``msg`` of type markdown (also the custom group robot's markdown body)."""
    return _fit_msg(lambda budget: {"msgtype": "markdown", "markdown": {
        "title": _title(card), "text": dingtalk_markdown(card, max_bytes=budget)}},
        WORK_NOTICE_MSG_MAX_BYTES)


def render_dingtalk_text(card: Card) -> dict[str, Any]:
    """Work-notice ``msg`` of type text: the text-mode fallback."""
    return _fit_msg(lambda budget: {"msgtype": "text", "text": {
        "content": render_text(card, max_bytes=budget)}}, WORK_NOTICE_MSG_MAX_BYTES)


# --- robot OpenAPI (batchSend / groupMessages: msgKey + msgParam) --------------------------------

def render_dingtalk_robot_actioncard(card: Card) -> dict[str, str]:
    """``msgKey`` + ``msgParam`` (a JSON string): sampleActionCard for one link,
    sampleActionCard2–5 (actionTitleN/actionURLN, vertical) for several, sampleMarkdown for none.
    """
    links = _action_links(card)[:ROBOT_MAX_ACTION_BUTTONS]
    text = dingtalk_markdown(card, with_link=False)
    param: dict[str, str] = {"title": _title(card), "text": text}
    if not links:
        return render_dingtalk_robot_markdown(card)
    if len(links) == 1:
        key = "sampleActionCard"
        param["singleTitle"] = truncate_chars(one_line(links[0][0]), ACTIONCARD_BUTTON_TITLE_CHARS)
        param["singleURL"] = links[0][1]
    else:
        key = f"sampleActionCard{len(links)}"
        for i, (title, url) in enumerate(links, start=1):
            param[f"actionTitle{i}"] = truncate_chars(one_line(title),
                                                      ACTIONCARD_BUTTON_TITLE_CHARS)
            param[f"actionURL{i}"] = url
    return {"msgKey": key, "msgParam": compact_json(param)}


def render_dingtalk_robot_markdown(card: Card) -> dict[str, str]:
    """``msgKey`` sampleMarkdown with ``msgParam`` {title, text}."""
    return {"msgKey": "sampleMarkdown",
            "msgParam": compact_json({"title": _title(card), "text": dingtalk_markdown(card)})}


def render_dingtalk_webhook_markdown(card: Card) -> dict[str, Any]:
    """Custom group robot (webhook) body, e.g. the managers' escalation group."""
    return render_dingtalk_markdown_msg(card)
