"""The sandbox page's HTTP side: the static page, a JSON API over the Demo, and a server-sent
event stream that pushes the whole state whenever it changes (the page also polls as a fallback).

    GET  /                    the page            GET /api/state     everything the page shows
    GET  /api/tour            the guided tour's words (?lang=zh|en)          GET /favicon.ico
    GET  /api/events          text/event-stream   POST /api/leads    {fields...} -> leadbot intake
    POST /api/tap             {platform, userid, key, ref}
    POST /api/text            {platform, userid, text}
    POST /api/friend          {userid, friend}    POST /api/advance  {seconds}
    GET  /api/routing         the sample config   POST /api/routing  {config} -> 100 decisions
    POST /api/crm/forge       a wrongly signed event to the sandbox CRM (shows as ✗)
    POST /sandbox/crm/webhook leadbot's signed change events -> the sandbox CRM (crm_receiver)
    GET  /api/faults          the platforms' fault switches, and what leadbot holds back
    POST /api/faults          {platform, name, on} switches one documented refusal / throttle
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from sandbox.demo import Demo

STATIC = Path(__file__).parent / "static"
DEMO: web.AppKey["Demo"] = web.AppKey("sandbox_demo")
_NO_STORE = {"Cache-Control": "no-store"}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.json_response(obj, status=status, dumps=_dumps, headers=_NO_STORE)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text='{"error": "body must be JSON"}', content_type="application/json") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text='{"error": "body must be a JSON object"}', content_type="application/json")
    return data


def _need(data: dict[str, Any], *keys: str) -> list[str]:
    values = []
    for key in keys:
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise web.HTTPBadRequest(text=_dumps({"error": f"{key} is required"}), content_type="application/json")
        values.append(value)
    return values


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers=_NO_STORE)


async def state(request: web.Request) -> web.Response:
    return _json(await request.app[DEMO].state())


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one `state` event now and after every change (checked every 300 ms,
    plus a full refresh every 2 s so the running clock and background deliveries show)."""
    demo = request.app[DEMO]
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    last_text = ""
    last_change = -1
    ticks = 0
    try:
        while not demo.stopping:
            if demo.changes != last_change or ticks % 7 == 0:
                last_change = demo.changes
                text = _dumps(await demo.state())
                if text != last_text:
                    last_text = text
                    await resp.write(f"event: state\ndata: {text}\n\n".encode())
                else:
                    await resp.write(b": keep-alive\n\n")
            ticks += 1
            await asyncio.sleep(0.3)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return resp


async def submit_lead(request: web.Request) -> web.Response:
    data = await _body(request)
    idem = str(data.pop("idempotency_key", "") or "")
    status, answer = await request.app[DEMO].submit_lead(data, idem)
    return _json({"status": status, "lead": answer}, 200 if status in (200, 201) else 502)


async def tap(request: web.Request) -> web.Response:
    data = await _body(request)
    platform, userid, key, ref = _need(data, "platform", "userid", "key", "ref")
    return _json(await request.app[DEMO].tap(platform, userid, key, ref))


async def text(request: web.Request) -> web.Response:
    data = await _body(request)
    platform, userid, content = _need(data, "platform", "userid", "text")
    return _json(await request.app[DEMO].send_text(platform, userid, content))


async def friend(request: web.Request) -> web.Response:
    data = await _body(request)
    (userid,) = _need(data, "userid")
    return _json(await request.app[DEMO].add_friend(userid, int(data.get("friend") or 0)))


async def advance(request: web.Request) -> web.Response:
    data = await _body(request)
    try:
        seconds = float(data.get("seconds", 0))
    except (TypeError, ValueError):
        seconds = -1
    if not 0 < seconds <= 30 * 86400:
        raise web.HTTPBadRequest(text='{"error": "seconds must be between 0 and 30 days"}',
                                 content_type="application/json")
    return _json(await request.app[DEMO].advance(seconds))


async def routing_sample(request: web.Request) -> web.Response:
    return _json({"config": request.app[DEMO].config_text})


async def routing(request: web.Request) -> web.Response:
    data = await _body(request)
    config = data.get("config")
    if not isinstance(config, str):
        raise web.HTTPBadRequest(text='{"error": "config (TOML text) is required"}', content_type="application/json")
    n = max(1, min(int(data.get("count") or 100), 500))
    result = await request.app[DEMO].routing_playground(config, n)
    return _json(result, 200 if result.get("ok") else 400)


async def tour(request: web.Request) -> web.Response:
    """The guided tour's words (?lang=zh|en, default the sandbox's language), from the catalogue."""
    return _json(request.app[DEMO].tour_words(request.query.get("lang") or None))


async def favicon(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "favicon.svg", headers={"Content-Type": "image/svg+xml",
                                                             "Cache-Control": "max-age=86400"})


async def crm_forge(request: web.Request) -> web.Response:
    return _json(await request.app[DEMO].forge_crm_event())


async def faults(request: web.Request) -> web.Response:
    return _json(await request.app[DEMO].faults())


async def set_fault(request: web.Request) -> web.Response:
    data = await _body(request)
    platform, name = _need(data, "platform", "name")
    if platform not in ("wecom", "dingtalk"):
        raise web.HTTPBadRequest(text='{"error": "platform must be wecom or dingtalk"}', content_type="application/json")
    try:
        return _json(await request.app[DEMO].set_fault(platform, name, bool(data.get("on"))))
    except KeyError:
        raise web.HTTPBadRequest(text=_dumps({"error": f"unknown fault {name}"}), content_type="application/json") from None


def make_web_app(demo: "Demo") -> web.Application:
    app = web.Application(client_max_size=256 * 1024)
    app[DEMO] = demo
    r = app.router
    r.add_get("/", index)
    r.add_static("/static/", STATIC, append_version=False)
    r.add_get("/favicon.ico", favicon)
    r.add_get("/api/tour", tour)
    r.add_get("/api/state", state)
    r.add_get("/api/events", events)
    r.add_post("/api/leads", submit_lead)
    r.add_post("/api/tap", tap)
    r.add_post("/api/text", text)
    r.add_post("/api/friend", friend)
    r.add_post("/api/advance", advance)
    r.add_get("/api/routing", routing_sample)
    r.add_post("/api/routing", routing)
    r.add_post("/api/crm/forge", crm_forge)
    r.add_get("/api/faults", faults)
    r.add_post("/api/faults", set_fault)
    demo.crm.routes(app)
    return app
