"""One normaliser for both DingTalk transports.

An HTTP callback (decrypted event JSON, robot POST body, card callback body) and a Stream frame
(EVENT with ``headers``+``data``, CALLBACK on the robot or card topic) describing the same thing
become the same inbox row (same dedupe key, same payload) and so the same neutral event:

    raw -> Inbound(kind, dedupe_key, payload)   at the edge, before the ack
    payload -> bot.events.*                     in the inbox processor (`to_event`)

The payload is plain JSON so that it survives the inbox table and a restart.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from bot.events import CardAction, CrmObjectChanged, RobotQuotaExhausted, TextCommand, UnknownEvent

PLATFORM = "dingtalk"
ROBOT_TOPIC = "/v1.0/im/bot/messages/get"
CARD_TOPIC = "/v1.0/card/instances/callback"
CRM_EVENT_PREFIX = "ding_paas_object_data_"
# Two callbacks for the same tap on the same card within this many ms are one tap: it absorbs
# platform retries and double taps; a deliberate second tap later is a new action.
CARD_TAP_BUCKET_MS = 5000

# Keys of the HTTP event JSON that describe the envelope rather than the event's data.
_HTTP_ENVELOPE = {"eventtype", "eventtime", "timestamp", "corpid", "eventid"}


@dataclass(frozen=True, slots=True)
class Inbound:
    kind: str  # event | robot | card
    dedupe_key: str
    payload: dict[str, Any]


class NotNormalisable(ValueError):
    """The raw callback lacks what every callback of its kind has (e.g. no EventType)."""


def _ms(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        return None
    if n <= 0:
        return None
    return n if n >= 100_000_000_000 else n * 1000  # seconds -> ms


def _lower_first(key: str) -> str:
    return key[:1].lower() + key[1:]


def _obj(value: Any) -> dict[str, Any]:
    """A JSON object given as a dict or as a JSON string (Stream frames carry data as text)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (str, bytes)) and value:
        try:
            parsed = json.loads(value)
        except ValueError:
            raise NotNormalisable("data is not JSON") from None
        if isinstance(parsed, dict):
            return parsed
    if value in (None, "", b""):
        return {}
    raise NotNormalisable("data is not a JSON object")


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _to_utc(ms: int | None, fallback: datetime) -> datetime:
    if ms is None:
        return fallback
    try:
        return datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return fallback


def _received_ms(received_at: datetime | None) -> int | None:
    return int(received_at.timestamp() * 1000) if received_at else None


# ---------------------------------------------------------------------------------- events

def _event(event_type: str, event_id: str, corp_id: str, time_ms: int | None, data: dict[str, Any],
           received_at: datetime | None) -> Inbound:
    if not event_type:
        raise NotNormalisable("event without EventType")
    payload = {"channel": "event", "type": event_type, "event_id": event_id, "corp_id": corp_id,
               "time_ms": time_ms, "received_ms": _received_ms(received_at), "data": data}
    if event_id:
        key = f"dingtalk:event:{event_id}"
    else:
        # Legacy pushes carry no eventId: type + business id + time is what identifies a resend.
        biz = str(data.get("bizId") or data.get("dataId") or data.get("processInstanceId") or "")
        if biz and time_ms:
            key = f"dingtalk:event:{event_type}:{biz}:{time_ms}"
        else:
            key = f"dingtalk:event:{event_type}:{_digest([data, time_ms])}"
    return Inbound("event", key, payload)


def event_from_http(plain: Mapping[str, Any], received_at: datetime | None = None) -> Inbound:
    """The decrypted JSON of an HTTP event push: flat ``EventType, EventTime, CorpId, eventId…``."""
    lower = {k.lower(): v for k, v in plain.items() if isinstance(k, str)}
    data: dict[str, Any] = {}
    nested = plain.get("data", plain.get("Data"))
    for key, value in plain.items():
        if not isinstance(key, str) or key.lower() in _HTTP_ENVELOPE or key in ("data", "Data"):
            continue
        data[_lower_first(key)] = value
    if isinstance(nested, (Mapping, str)) and nested:
        try:
            data.update({_lower_first(k): v for k, v in _obj(nested).items()})
        except NotNormalisable:
            data["data"] = nested
    time_ms = _ms(lower.get("eventtime")) or _ms(lower.get("timestamp"))
    return _event(str(lower.get("eventtype") or ""), str(lower.get("eventid") or ""),
                  str(lower.get("corpid") or ""), time_ms, data, received_at)


def event_from_stream(frame: Mapping[str, Any], received_at: datetime | None = None) -> Inbound:
    """A Stream EVENT frame: ``headers{eventType, eventId, eventBornTime, eventCorpId}``, ``data``."""
    headers = frame.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise NotNormalisable("frame headers are not an object")
    data = {_lower_first(k): v for k, v in _obj(frame.get("data")).items()}
    return _event(str(headers.get("eventType") or ""), str(headers.get("eventId") or ""),
                  str(headers.get("eventCorpId") or ""), _ms(headers.get("eventBornTime")), data, received_at)


# ----------------------------------------------------------------------------- robot / card

def robot_message(body: Mapping[str, Any], received_at: datetime | None = None) -> Inbound:
    """An app-robot message: the HTTP POST body and the Stream frame's data are the same JSON."""
    body = dict(body)
    msg_id = str(body.get("msgId") or "")
    key = f"dingtalk:robot:{msg_id}" if msg_id else f"dingtalk:robot:{_digest(body)}"
    return Inbound("robot", key, {"channel": "robot", "received_ms": _received_ms(received_at), "body": body})


def _card_content(body: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return _obj(body.get("content"))
    except NotNormalisable:
        return {}


def card_action_key(body: Mapping[str, Any]) -> str:
    """``<action>:<token>``: params.key when the template sends it, else the action id (plus
    params.token when the action id is a bare action name)."""
    private = _card_content(body).get("cardPrivateData") or {}
    if not isinstance(private, Mapping):
        return ""
    params = private.get("params") or {}
    params = params if isinstance(params, Mapping) else {}
    key = params.get("key")
    if isinstance(key, str) and key:
        return key
    ids = private.get("actionIds") or []
    action = str(ids[0]) if isinstance(ids, list) and ids else ""
    token = params.get("token")
    if action and ":" not in action and isinstance(token, str) and token:
        return f"{action}:{token}"
    return action


def card_callback(body: Mapping[str, Any], ts_ms: int | None = None,
                  received_at: datetime | None = None) -> Inbound:
    """An interactive-card callback ``{type, outTrackId, corpId, userId, content}``."""
    body = dict(body)
    out_track_id = str(body.get("outTrackId") or "")
    user_id = str(body.get("userId") or "")
    if not out_track_id or not user_id:
        raise NotNormalisable("card callback without outTrackId or userId")
    when = _ms(ts_ms) or _received_ms(received_at) or 0
    action_key = card_action_key(body)
    key_hash = hashlib.sha256(action_key.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    dedupe = f"dingtalk:card:{out_track_id}:{user_id}:{key_hash}:{when // CARD_TAP_BUCKET_MS}"
    return Inbound("card", dedupe[:400], {"channel": "card", "ts_ms": _ms(ts_ms),
                                          "received_ms": _received_ms(received_at), "body": body})


# ------------------------------------------------------------------------ payload -> event

def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _robot_text(body: Mapping[str, Any]) -> str | None:
    msgtype = body.get("msgtype")
    if msgtype == "text":
        text = body.get("text") or {}
        content = text.get("content") if isinstance(text, Mapping) else None
        return content if isinstance(content, str) else None
    if msgtype == "richText":
        content = body.get("content") or {}
        parts = content.get("richText") if isinstance(content, Mapping) else None
        if isinstance(parts, list):
            return "".join(str(p.get("text", "")) for p in parts if isinstance(p, Mapping))
    return None


def to_event(payload: Mapping[str, Any]) -> Any:
    """The inbox parser for platform "dingtalk": a stored payload -> one neutral event."""
    channel = payload.get("channel")
    fallback = _to_utc(_ms(payload.get("received_ms")), datetime.fromtimestamp(0, tz=timezone.utc))
    if channel == "event":
        event_type = str(payload.get("type") or "")
        data = payload.get("data") or {}
        when = _to_utc(_ms(payload.get("time_ms")), fallback)
        corp_id = str(payload.get("corp_id") or "")
        if event_type.startswith(CRM_EVENT_PREFIX):
            return CrmObjectChanged(platform=PLATFORM, change=event_type[len(CRM_EVENT_PREFIX):],
                                    object_type=str(data.get("objectType") or ""),
                                    data_id=str(data.get("dataId") or ""), occurred_at=when, corp_id=corp_id)
        raw = {str(k): _text(v)[:1000] for k, v in data.items()}
        return UnknownEvent(platform=PLATFORM, kind=event_type, occurred_at=when, raw=raw)
    if channel == "robot":
        body = payload.get("body") or {}
        when = _to_utc(_ms(body.get("createAt")), fallback)
        text = _robot_text(body)
        expires = _ms(body.get("sessionWebhookExpiredTime"))
        err_code = _ms(body.get("errCode") if "errCode" in body else body.get("errcode"))
        if text is None and err_code:
            # conformance D13: the org's call quota is used up; the message came without text.
            return RobotQuotaExhausted(platform=PLATFORM, sender_id=str(body.get("senderStaffId") or ""),
                                       occurred_at=when, error_code=int(err_code),
                                       error_message=_text(body.get("errMsg") or body.get("errmsg") or "")[:300],
                                       message_id=str(body.get("msgId") or ""),
                                       reply_webhook=str(body.get("sessionWebhook") or ""),
                                       reply_webhook_expires_at=_to_utc(expires, fallback) if expires else None)
        if text is None:
            return UnknownEvent(platform=PLATFORM, kind=f"robot_{body.get('msgtype') or 'unknown'}",
                                occurred_at=when, raw={"msgId": str(body.get("msgId") or "")})
        return TextCommand(platform=PLATFORM,
                           sender_id=str(body.get("senderStaffId") or body.get("senderId") or ""),
                           text=text.strip(), occurred_at=when, message_id=str(body.get("msgId") or ""),
                           conversation_id=str(body.get("conversationId") or ""),
                           is_group=str(body.get("conversationType") or "") == "2",
                           reply_webhook=str(body.get("sessionWebhook") or ""),
                           reply_webhook_expires_at=_to_utc(expires, fallback) if expires else None)
    if channel == "card":
        body = payload.get("body") or {}
        when = _to_utc(_ms(payload.get("ts_ms")), fallback)
        key = card_action_key(body)
        if not key:
            return UnknownEvent(platform=PLATFORM, kind="card_callback", occurred_at=when,
                                raw={"outTrackId": str(body.get("outTrackId") or "")})
        private = _card_content(body).get("cardPrivateData") or {}
        params = private.get("params") if isinstance(private, Mapping) else None
        params = {str(k): _text(v) for k, v in params.items()} if isinstance(params, Mapping) else {}
        return CardAction(platform=PLATFORM, actor_id=str(body.get("userId") or ""), key=key, occurred_at=when,
                          card_ref=str(body.get("outTrackId") or ""), params=params)
    return UnknownEvent(platform=PLATFORM, kind=f"unknown_{channel}", occurred_at=fallback)
