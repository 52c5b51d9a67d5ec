"""The outbound change event: a stable JSON schema and its signature. Pure: no I/O, no clock.

Body (UTF-8 JSON, keys sorted, no insignificant whitespace)::

    {"schema": "leadbot.change/1", "event_id": "...", "type": "lead.claimed",
     "occurred_at": "2026-11-23T02:00:00+00:00",
     "entity": {"type": "lead", "id": 12, "external_id": "CRM-77"},
     "data": {...}, "version": 3}

Headers: ``X-Leadbot-Event-Id``, ``X-Leadbot-Timestamp`` (unix seconds) and
``X-Leadbot-Signature`` = hex HMAC-SHA256(secret, f"{timestamp}.{body}").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

SCHEMA = "leadbot.change/1"
EVENT_TYPES = (
    "lead.created", "lead.assigned", "lead.pooled", "lead.claimed", "lead.released", "lead.reassigned",
    "lead.stage_advanced", "lead.contacted", "lead.snapshot",
    "customer.created", "customer.merged", "customer.merge_undone", "customer.identity_linked",
    "customer.snapshot",
)
HEADER_EVENT_ID = "X-Leadbot-Event-Id"
HEADER_TIMESTAMP = "X-Leadbot-Timestamp"
HEADER_SIGNATURE = "X-Leadbot-Signature"
_NAMESPACE = uuid.UUID("6f1f7f0e-3c1e-4d55-9a55-6c6561646274")


def event_id_for(cause: str) -> str:
    """A deterministic id per cause (``audit:17``, ``routing:4``): the same change captured twice
    (a retried transaction) is one event, and receivers dedupe on it."""
    return str(uuid.uuid5(_NAMESPACE, cause))


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    event_id: str
    type: str
    occurred_at: datetime
    entity_type: str  # lead | customer
    entity_id: int
    external_id: str | None
    version: int
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def entity_key(self) -> str:
        return f"{self.entity_type}:{self.entity_id}"

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "event_id": self.event_id, "type": self.type,
                "occurred_at": self.occurred_at.isoformat(),
                "entity": {"type": self.entity_type, "id": self.entity_id, "external_id": self.external_id},
                "data": dict(self.data), "version": self.version}


def encode(event: Mapping[str, Any]) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(event, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    msg = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), msg, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None,
           tolerance: float = 300.0) -> bool:
    """What a receiver does (docs/crm_bridge.md): constant-time compare, and a timestamp window
    against replays when ``now`` is given."""
    if now is not None:
        try:
            if abs(now - int(timestamp)) > tolerance:
                return False
        except ValueError:
            return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")


def signed_headers(secret: str, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json; charset=utf-8", HEADER_EVENT_ID: event_id,
            HEADER_TIMESTAMP: str(timestamp), HEADER_SIGNATURE: sign(secret, timestamp, body)}
