"""Decrypted WeCom callback fields -> neutral events (bot.events), plus the inbox dedupe key.

The payload is the inner XML as a dict (safexml shape): plain strings, except SelectedItems,
whose SelectedItem is a dict when one question was answered and a list when several were.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from bot.events import (AgentEntered, CardAction, ContactChanged, FriendAdded, TextCommand,
                        UnknownEvent)

FRIEND_ADDED_TYPES = frozenset({"add_external_contact", "add_half_external_contact"})
CONTACT_CHANGED_TYPES = frozenset({"edit_external_contact", "del_external_contact",
                                   "del_follow_user", "transfer_fail"})
CARD_EVENTS = frozenset({"template_card_event", "template_card_menu_event"})


class MissingField(ValueError):
    """A callback without a field its dedupe key needs."""


def _s(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key, "")
    return value.strip() if isinstance(value, str) else ""


def occurred_at(payload: Mapping[str, Any]) -> datetime:
    raw = _s(payload, "CreateTime")
    try:
        return datetime.fromtimestamp(int(raw), tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return datetime.fromtimestamp(0, tz=timezone.utc)


def kind_of(payload: Mapping[str, Any]) -> str:
    msg_type = _s(payload, "MsgType") or "unknown"
    if msg_type != "event":
        return f"msg:{msg_type}"
    event = _s(payload, "Event") or "unknown"
    change = _s(payload, "ChangeType")
    return f"event:{event}:{change}" if change else f"event:{event}"


def dedupe_key(payload: Mapping[str, Any]) -> str:
    """Messages on MsgId; external-contact changes on Event+ChangeType+UserID+ExternalUserID+
    CreateTime (their FromUserName is always `sys`); other events on FromUserName+CreateTime+Event,
    plus EventKey/TaskId for card taps (one user may tap two buttons within a second)."""
    msg_type = _s(payload, "MsgType")
    create_time = _s(payload, "CreateTime")
    if not msg_type or not create_time.isdigit():
        raise MissingField("MsgType and a numeric CreateTime are required")
    if msg_type != "event":
        msg_id = _s(payload, "MsgId")
        if msg_id:
            return f"wecom:msg:{msg_id}"
        return f"wecom:msg:{_s(payload, 'FromUserName')}:{create_time}:{msg_type}"
    event = _s(payload, "Event")
    if event == "change_external_contact":
        parts = [event, _s(payload, "ChangeType"), _s(payload, "UserID"),
                 _s(payload, "ExternalUserID"), create_time]
        return "wecom:" + ":".join(parts)
    parts = [_s(payload, "FromUserName"), create_time, event]
    if event in CARD_EVENTS:
        parts += [_s(payload, "EventKey"), _s(payload, "TaskId")]
    return "wecom:evt:" + ":".join(parts)


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def selected_items(payload: Mapping[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """SelectedItems/SelectedItem/{QuestionKey, OptionIds/OptionId} -> ((question, (ids…)), …)."""
    container = payload.get("SelectedItems")
    if not isinstance(container, Mapping):
        return ()
    out: list[tuple[str, tuple[str, ...]]] = []
    for item in _as_list(container.get("SelectedItem")):
        if not isinstance(item, Mapping):
            continue
        question = item.get("QuestionKey", "")
        options = item.get("OptionIds")
        ids = _as_list(options.get("OptionId")) if isinstance(options, Mapping) else []
        out.append((question.strip() if isinstance(question, str) else "",
                    tuple(i.strip() for i in ids if isinstance(i, str))))
    return tuple(out)


def parse_event(payload: Mapping[str, Any]) -> Any:
    """Never raises for content it does not know: that becomes an UnknownEvent."""
    at = occurred_at(payload)
    msg_type = _s(payload, "MsgType")
    event = _s(payload, "Event")
    if msg_type == "text":
        content = payload.get("Content")
        return TextCommand(platform="wecom", sender_id=_s(payload, "FromUserName"),
                           text=content.strip() if isinstance(content, str) else "",
                           occurred_at=at, message_id=_s(payload, "MsgId"))
    if msg_type == "event" and event == "change_external_contact":
        change = _s(payload, "ChangeType")
        rep, ext = _s(payload, "UserID"), _s(payload, "ExternalUserID")
        if change in FRIEND_ADDED_TYPES:
            return FriendAdded(platform="wecom", rep_user_id=rep, external_user_id=ext, occurred_at=at,
                               state=_s(payload, "State"), welcome_code=_s(payload, "WelcomeCode"),
                               half=change == "add_half_external_contact")
        if change in CONTACT_CHANGED_TYPES:
            return ContactChanged(platform="wecom", change_type=change, rep_user_id=rep,
                                  external_user_id=ext, occurred_at=at, source=_s(payload, "Source"),
                                  fail_reason=_s(payload, "FailReason"))
    if msg_type == "event" and event in CARD_EVENTS:
        params = {"event": event}
        if _s(payload, "AgentID"):
            params["agent_id"] = _s(payload, "AgentID")
        return CardAction(platform="wecom", actor_id=_s(payload, "FromUserName"),
                          key=_s(payload, "EventKey"), occurred_at=at, card_ref=_s(payload, "TaskId"),
                          response_code=_s(payload, "ResponseCode"), card_type=_s(payload, "CardType"),
                          selected=selected_items(payload), params=params)
    if msg_type == "event" and event == "enter_agent":
        return AgentEntered(platform="wecom", user_id=_s(payload, "FromUserName"), occurred_at=at)
    raw = {k: v for k, v in payload.items() if isinstance(v, str)}
    return UnknownEvent(platform="wecom", kind=kind_of(payload), occurred_at=at, raw=raw)
