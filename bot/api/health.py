"""/healthz (the process answers), /readyz (database reachable, schema current), /metrics."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from bot.api.auth import bearer_ok
from bot.context import ctx_of
from bot.api.errors import json_error
from store.migrate import current_revision, head_revision


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    try:
        await ctx.store.ping()
        revision = await current_revision(ctx.engine)
    except Exception as e:  # any failure to reach the store means "not ready", never a crash
        return web.json_response({"status": "unavailable", "database": type(e).__name__}, status=503)
    head = head_revision()
    if revision != head:
        return web.json_response({"status": "migrations_pending", "current": revision, "head": head},
                                 status=503)
    return web.json_response({"status": "ready", "schema": revision})


def _loopback(remote: str | None) -> bool:
    try:
        return bool(remote) and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text, for [server] metrics_token's Bearer holder, or (no token configured) for
    a scraper on this host only: the counters describe traffic and are nobody else's business."""
    ctx = ctx_of(request)
    token = ctx.settings.server.metrics_token
    if token:
        if not bearer_ok(request.headers.get("Authorization", ""), (token,)):
            resp = json_error(401, "unauthorized", "missing or invalid Bearer token ([server] metrics_token)")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="leadbot-metrics"'
            return resp
    elif not _loopback(request.remote):
        return json_error(403, "forbidden", "/metrics answers loopback clients only unless [server] "
                                            "metrics_token is set")
    try:
        pending = (await ctx.inbox.counts()).get("pending", 0)
        ctx.metrics.inbox_pending.set(pending)
    except Exception:  # metrics must render even while the database is away
        pass
    return web.Response(body=ctx.metrics.render(), headers={"Content-Type": ctx.metrics.content_type})


def setup_health(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/metrics", metrics, name="metrics")
