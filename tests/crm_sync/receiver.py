"""A reference receiver: the "second system" a CRM would be. It verifies every signature,
drops replays by event id, refuses to go backwards per entity, and mirrors each entity from the
snapshot the event carries. docs/crm_bridge.md describes the same recipe."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

from crm_bridge.events import HEADER_EVENT_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, SCHEMA, verify


@dataclass
class ReferenceReceiver:
    secret: str
    now: Callable[[], float]
    down: bool = False  # True: answer 503 like a CRM in maintenance
    applied: list[dict[str, Any]] = field(default_factory=list)  # events in the order applied
    mirror: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    versions: dict[tuple[str, int], int] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)
    duplicates: int = 0
    requests: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.down:
            return web.json_response({"error": "maintenance"}, status=503)
        body = await request.read()
        ts = request.headers.get(HEADER_TIMESTAMP, "")
        if not verify(self.secret, ts, body, request.headers.get(HEADER_SIGNATURE, ""), now=self.now()):
            self.refused.append("bad signature")
            return web.json_response({"error": "bad signature"}, status=401)
        event = await request.json()
        if event.get("schema") != SCHEMA or event["event_id"] != request.headers.get(HEADER_EVENT_ID):
            self.refused.append("bad schema")
            return web.json_response({"error": "bad schema"}, status=400)
        if event["event_id"] in self.seen:
            self.duplicates += 1
            return web.json_response({"ok": True, "duplicate": True})
        entity = event["entity"]
        key = (entity["type"], entity["id"])
        if event["version"] < self.versions.get(key, 0):
            self.refused.append(f"{key} went back from v{self.versions[key]} to v{event['version']}")
            return web.json_response({"error": "out of order"}, status=409)
        self.seen.add(event["event_id"])
        self.versions[key] = event["version"]
        self.mirror[key] = event["data"][entity["type"]]
        self.applied.append(event)
        return web.json_response({"ok": True})

    def types_for(self, entity_type: str, entity_id: int) -> list[str]:
        return [e["type"] for e in self.applied if (e["entity"]["type"], e["entity"]["id"]) == (entity_type, entity_id)]
