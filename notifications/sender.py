"""The seam between the delivery worker and the platforms: bot/app.py injects a ``Sender``.

Idempotency across a crash between "the platform accepted it" and "the outbox row says sent":
every message carries ``dedupe_id``, derived only from the row's idempotency key, and adapters
must hand it to the platform as its own duplicate guard:

- WeCom template cards: ``task_id = dedupe_id`` (unique per app: a second send with the same
  task_id is refused, and the adapter reports that refusal as ``ok``);
- WeCom text/textcard/markdown: ``enable_duplicate_check=1`` with ``duplicate_check_interval``
  (<= 4 h) on a payload that is byte-identical on a resend, because it comes from the row;
- DingTalk cards: ``outTrackId = dedupe_id`` (a second createAndDeliver of the same outTrackId
  does not add a second card);
- DingTalk work notices: the platform itself drops the same content to the same user within a
  day.

``redelivery`` tells the adapter that an earlier attempt may have reached the platform (its
lease expired, or it failed without a clear answer, e.g. timed out); the worker never sends a
row twice on its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

# "blocked": not sent on purpose (an earlier message of the same stream is still pending, see
# crm_bridge.gate); the worker holds the row back ``retry_after`` seconds without spending
# an attempt.
# "text_copy": the card may or may not have arrived (a redelivered card refused by a code that
# does not say why, conformance W5): the worker sends the text copy instead, so the recipient
# has the message at least once, without changing their delivery profile.
# "unreached": the platform accepted the message but reports that it will not reach this
# recipient (DingTalk getsendresult: invalid, forbidden, over the daily limit, conformance D3);
# the worker sends it another way (the other platform, or the robot's text).
ERROR_KINDS = ("retry", "throttle", "permanent", "card_unsupported", "invalid_user", "blocked", "text_copy",
               "unreached")
# What a throttle holds back (DeliveryResult.scope): this message only, everything to this
# recipient on this channel (a member's window, a group robot's 10-minute block), or every
# call of the app on this channel (QPM limits, 9000x, the IP flood block).
THROTTLE_SCOPES = ("message", "recipient", "app")


def dedupe_id(key: str, namespace: str = "") -> str:
    """A platform-safe id from an idempotency key: WeCom task_id allows [0-9A-Za-z_-@] <= 128 B.
    ``namespace``: the deployment id (conformance W6, store.kv.deployment_id), so another
    database on the same app never makes the same id for its own row."""
    return "lb" + (f"{namespace}-" if namespace else "") + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    key: str  # the outbox idempotency key
    dedupe_id: str  # hand this to the platform as task_id / outTrackId
    channel: str  # wecom | dingtalk | wecom_robot | dingtalk_robot
    kind: str  # the row's kind: card | text | card_update | robot
    form: str  # what to send: "card" | "text" | the kind itself for card_update/robot
    recipient: str  # platform userid, robot key or conversation id
    payload: Mapping[str, Any]
    text: str = ""  # for form "text": the full plain text, link included
    link: str | None = None  # the H5 action page behind the text
    rep_id: int | None = None
    lead_id: int | None = None
    attempt: int = 1
    redelivery: bool = False
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    ok: bool
    platform_ids: Mapping[str, Any] = field(default_factory=dict)  # msgid, response_code, task_id, outTrackId
    error_kind: str | None = None  # None | retry | throttle | permanent | card_unsupported | invalid_user
    message: str = ""
    retry_after: float | None = None  # seconds, when the platform said
    scope: str = "message"  # for throttles: message | recipient | app (THROTTLE_SCOPES)

    @classmethod
    def sent(cls, **platform_ids: Any) -> "DeliveryResult":
        return cls(True, platform_ids)

    @classmethod
    def failed(cls, error_kind: str, message: str = "", retry_after: float | None = None,
               scope: str = "message") -> "DeliveryResult":
        if error_kind not in ERROR_KINDS:
            raise ValueError(f"unknown error kind {error_kind!r}")
        if scope not in THROTTLE_SCOPES:
            raise ValueError(f"unknown throttle scope {scope!r}")
        return cls(False, {}, error_kind, message, retry_after, scope)


class Sender(Protocol):
    async def send(self, message: OutboundMessage) -> DeliveryResult: ...
