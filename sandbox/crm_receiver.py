"""The sandbox's "existing CRM": a second system that follows every change leadbot makes.

`leadbot demo` points `[crm_bridge] webhook_urls` at `POST /sandbox/crm/webhook` on the page's
own loopback server. Like a real receiver written from docs/crm_bridge.md alone (it does not
import leadbot's protocol code), it

- verifies `X-Leadbot-Signature` = hex HMAC-SHA256(secret, timestamp + "." + raw body) in
  constant time, and refuses timestamps more than 5 minutes from the sandbox clock (401, shown ✗);
- dedupes on `event_id` (delivery is at-least-once) and ignores an event whose `version` is lower
  than the one already applied for that entity;
- mirrors each lead/customer by leadbot id from the snapshot the event carries, and keeps a log of
  the latest events for the page's CRM panel.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Callable
from zoneinfo import ZoneInfo

from aiohttp import web

WEBHOOK_PATH = "/sandbox/crm/webhook"
SCHEMA = "leadbot.change/1"
TOLERANCE_SECONDS = 300


def signature_ok(secret: str, timestamp: str, body: bytes, signature: str, *, now: float,
                 tolerance: float = TOLERANCE_SECONDS) -> bool:
    """docs/crm_bridge.md's recipe: over the raw bytes, constant-time, with a replay window."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature or "")


@dataclass
class CrmReceiver:
    """The mirror. `now` is the sandbox clock (leadbot signs with it, and the page can
    fast-forward it); `on_change` wakes the page's event stream."""

    secret: str
    now: Callable[[], datetime]
    on_change: Callable[[], None] = lambda: None
    # The page's zone: the sandbox calendar's, read when shown (the settings come later).
    zone: Callable[[], tzinfo] = lambda: ZoneInfo("Asia/Shanghai")
    leads: dict[int, dict[str, Any]] = field(default_factory=dict)
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    versions: dict[tuple[str, int], int] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    events: list[dict[str, Any]] = field(default_factory=list)  # the log, oldest first (last 200)
    max_events: int = 200

    def routes(self, app: web.Application) -> None:
        app.router.add_post(WEBHOOK_PATH, self.handle)

    def _log(self, **item: Any) -> None:
        item.setdefault("at", self.now().isoformat())
        self.events.append(item)
        del self.events[:-self.max_events]
        self.on_change()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-Leadbot-Timestamp", "")
        signature = request.headers.get("X-Leadbot-Signature", "")
        header_id = request.headers.get("X-Leadbot-Event-Id", "")
        event: Any = None
        try:
            event = json.loads(body)
        except ValueError:
            pass
        summary = _summary(event, header_id)
        if not signature_ok(self.secret, timestamp, body, signature, now=self.now().timestamp()):
            self._log(**summary, verified=False, outcome="refused: bad signature")
            return web.json_response({"error": "bad signature"}, status=401)
        if not isinstance(event, dict) or event.get("schema") != SCHEMA or event.get("event_id") != header_id \
                or not isinstance(event.get("entity"), dict):
            self._log(**summary, verified=True, outcome="refused: bad schema")
            return web.json_response({"error": "bad schema"}, status=400)
        if header_id in self.seen:
            self._log(**summary, verified=True, outcome="duplicate")
            return web.json_response({"ok": True, "duplicate": True})
        entity = event["entity"]
        key = (str(entity.get("type")), int(entity.get("id") or 0))
        version = int(event.get("version") or 0)
        self.seen.add(header_id)
        if version < self.versions.get(key, 0):
            self._log(**summary, verified=True, outcome=f"stale: v{version} < v{self.versions[key]}")
            return web.json_response({"ok": True, "stale": True})
        self.versions[key] = version
        snapshot = (event.get("data") or {}).get(key[0])
        if isinstance(snapshot, dict):
            target = self.leads if key[0] == "lead" else self.customers if key[0] == "customer" else None
            if target is not None:
                target[key[1]] = {**snapshot, "_version": version, "_event": event.get("type")}
        self._log(**summary, verified=True, outcome="applied")
        return web.json_response({"ok": True})

    # ------------------------------------------------------------------ what the page shows

    def view(self) -> dict[str, Any]:
        leads = [{"id": lead_id, "external_id": s.get("external_id"), "name": s.get("name") or "",
                  "owner": _owner_name(s.get("owner")), "stage": s.get("stage") or "",
                  "status": s.get("status") or "", "version": s["_version"], "last": s["_event"]}
                 for lead_id, s in sorted(self.leads.items(), reverse=True)]
        customers = [{"id": cid, "name": s.get("name") or "", "status": s.get("status") or "",
                      "version": s["_version"], "last": s["_event"]}
                     for cid, s in sorted(self.customers.items(), reverse=True)]
        return {"webhook": WEBHOOK_PATH, "leads": leads[:40], "customers": customers[:40],
                "events": [{**e, "time": _hhmmss(e["at"], self.zone())} for e in self.events[-60:]][::-1],
                "received": len(self.events), "refused": sum(1 for e in self.events if not e["verified"])}


def _summary(event: Any, header_id: str) -> dict[str, Any]:
    if not isinstance(event, dict):
        return {"event_id": header_id, "type": "?", "entity": "?", "entity_type": "", "entity_id": None,
                "version": None}
    entity = event.get("entity") if isinstance(event.get("entity"), dict) else {}
    return {"event_id": str(event.get("event_id") or header_id), "type": str(event.get("type") or "?"),
            "entity": f"{entity.get('type', '?')} #{entity.get('id', '?')}", "entity_type": entity.get("type", ""),
            "entity_id": entity.get("id"), "version": event.get("version")}


def _owner_name(owner: Any) -> str:
    if isinstance(owner, dict):
        return str(owner.get("name") or owner.get("external_id") or owner.get("id") or "")
    return ""


def _hhmmss(iso: str, zone: tzinfo) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(zone).strftime("%H:%M:%S")
    except ValueError:
        return ""


__all__ = ["CrmReceiver", "WEBHOOK_PATH", "signature_ok"]
