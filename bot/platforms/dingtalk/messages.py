"""DingTalk message payloads: work notices (asyncsend_v2 ``msg``), robot ``msgKey``/``msgParam``,
custom-robot and sessionWebhook JSON. Pure functions, no I/O.

Limits that would make DingTalk refuse (or silently cut) a message are applied here: work-notice
titles 64 characters, single_title 20, a whole ``msg`` at most 2048 bytes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Sequence

WORK_NOTICE_MAX_BYTES = 2048
TITLE_MAX = 64
SINGLE_TITLE_MAX = 20
BUTTON_TITLE_MAX = 20
ROBOT_BATCH_MAX = 20
WORK_NOTICE_MAX_USERS = 100

Button = tuple[str, str]  # (title, url)


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: max(0, n - 1)] + "…"


def short_ref(key: str) -> str:
    """A short, stable tag for a message. DingTalk delivers the same work-notice content to the
    same user once a day; two different messages that happen to read the same (two "new lead"
    reminders) differ by their ref, while a resend of one message stays byte-identical."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:6]


def _with_ref(text: str, ref: str, markdown: bool) -> str:
    """``ref`` as the reader sees it, e.g. "消息编号 961366" (the caller words it in the
    recipient's language; a bare "#961366" at the end of a message explained nothing)."""
    if not ref:
        return text
    return f"{text}\n\n###### {ref}" if markdown else f"{text}\n{ref}"


# ------------------------------------------------------------------------- work notices

def work_text(content: str, ref: str = "") -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": _with_ref(content, ref, markdown=False)}}


def work_markdown(title: str, text: str, ref: str = "") -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"title": _cut(title, TITLE_MAX),
                                                "text": _with_ref(text, ref, markdown=True)}}


def work_action_card(title: str, markdown: str, *, buttons: Sequence[Button] = (),
                     single: Button | None = None, vertical: bool = True, ref: str = "") -> dict[str, Any]:
    """One button (``single``) or several (``buttons``); DingTalk lets a single button win."""
    card: dict[str, Any] = {"title": _cut(title, TITLE_MAX), "markdown": _with_ref(markdown, ref, markdown=True)}
    if single is not None:
        card["single_title"] = _cut(single[0], SINGLE_TITLE_MAX)
        card["single_url"] = single[1]
    elif buttons:
        card["btn_orientation"] = "0" if vertical else "1"
        card["btn_json_list"] = [{"title": _cut(t, BUTTON_TITLE_MAX), "action_url": u} for t, u in buttons]
    else:
        raise ValueError("an action_card needs a single button or a list of buttons")
    return {"msgtype": "action_card", "action_card": card}


def msg_size(msg: Mapping[str, Any]) -> int:
    return len(json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def fit_work_notice(msg: dict[str, Any]) -> dict[str, Any]:
    """Shortens the long text field until the msg fits 2048 bytes (the ref survives, at the end)."""
    if msg_size(msg) <= WORK_NOTICE_MAX_BYTES:
        return msg
    kind = msg.get("msgtype")
    field = {"text": ("text", "content"), "markdown": ("markdown", "text"),
             "action_card": ("action_card", "markdown")}.get(str(kind))
    if field is None:
        return msg
    outer, inner = field
    body = dict(msg[outer])
    text = str(body[inner])
    tail = ""
    marker = "\n\n###### #" if kind != "text" else "\n#"
    if marker in text:
        text, _, ref = text.rpartition(marker)
        tail = marker + ref
    out = {**msg, outer: body}
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix that fits
        mid = (lo + hi + 1) // 2
        body[inner] = text[:mid] + "…" + tail
        if msg_size(out) <= WORK_NOTICE_MAX_BYTES:
            lo = mid
        else:
            hi = mid - 1
    body[inner] = text[:lo] + "…" + tail
    return out


# ------------------------------------------------------------------ robot OpenAPI msgKeys

def sample_text(content: str) -> tuple[str, dict[str, str]]:
    return "sampleText", {"content": content}


def sample_markdown(title: str, text: str) -> tuple[str, dict[str, str]]:
    return "sampleMarkdown", {"title": title, "text": text}


def sample_action_card(title: str, text: str, buttons: Sequence[Button], *,
                       horizontal: bool = False) -> tuple[str, dict[str, str]]:
    """sampleActionCard (1 button), sampleActionCard2-5 (2-5 vertical buttons) or
    sampleActionCard6 (2 side-by-side buttons)."""
    n = len(buttons)
    if n == 1:
        return "sampleActionCard", {"title": title, "text": text, "singleTitle": buttons[0][0],
                                    "singleURL": buttons[0][1]}
    if n == 2 and horizontal:
        return "sampleActionCard6", {"title": title, "text": text,
                                     "buttonTitle1": buttons[0][0], "buttonUrl1": buttons[0][1],
                                     "buttonTitle2": buttons[1][0], "buttonUrl2": buttons[1][1]}
    if 2 <= n <= 5:
        param = {"title": title, "text": text}
        for i, (t, u) in enumerate(buttons, start=1):
            param[f"actionTitle{i}"] = t
            param[f"actionURL{i}"] = u
        return f"sampleActionCard{n}", param
    raise ValueError("robot action cards take 1 to 5 buttons")


# --------------------------------------------------------- custom robot / sessionWebhook

def robot_text(content: str, at_user_ids: Sequence[str] = (), at_mobiles: Sequence[str] = ()) -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": content},
            "at": {"atUserIds": list(at_user_ids), "atMobiles": list(at_mobiles), "isAtAll": False}}


def robot_markdown(title: str, text: str, at_user_ids: Sequence[str] = ()) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"title": title, "text": text},
            "at": {"atUserIds": list(at_user_ids), "isAtAll": False}}


def robot_action_card(title: str, text: str, buttons: Sequence[Button], *, vertical: bool = True) -> dict[str, Any]:
    card: dict[str, Any] = {"title": title, "text": text}
    if len(buttons) == 1:
        card["singleTitle"], card["singleURL"] = buttons[0]
    else:
        card["btnOrientation"] = "0" if vertical else "1"
        card["btns"] = [{"title": t, "actionURL": u} for t, u in buttons]
    return {"msgtype": "actionCard", "actionCard": card}
