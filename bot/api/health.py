"""/healthz (the process answers), /readyz (database reachable, schema current), /metrics."""

from __future__ import annotations

from aiohttp import web

from bot.context import ctx_of
from crm_bridge.migrate import current_revision, head_revision


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


async def metrics(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
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
