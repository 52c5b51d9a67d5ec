"""The only composition root: create_app(settings) wires every part of leadbot together."""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any, Awaitable, Callable

from aiohttp import web
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.exc import TimeoutError as SqlPoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.api.crm_api import setup_crm_bridge
from bot.api.health import setup_health
from bot.api.intake import setup_intake
from bot.api.dingtalk_callbacks import setup_dingtalk
from bot.api.wecom_callback import setup_wecom
from bot.actions.buttons import ButtonFactory
from bot.actions.effects import AfterEffects
from bot.actions.secret import action_secret
from bot.actions.service import ActionService
from bot.actions.tokens import ActionSigner
from leadbot.i18n import t
from bot.context import CTX, AppContext
from routing.explain_text import explain_lead
from bot.journey.flow import Flow
from bot.h5.page import setup_h5
from bot.handlers.leads import resubmit_unrouted, submit_lead
from bot.journey.identity import IdentityActions
from bot.api.errors import json_error
from bot.handlers import card_actions, commands, crm_objects, dispatch, friends, leads  # noqa: F401  (registers handlers)
from bot.handlers.inbox import InboxProcessor
from bot.metrics import Metrics, channels_named_in
from store.db import create_engine
from store.inbox import Inbox
from store.kv import KeyValueStore
from crm.leads import EFFECT_KINDS, LeadActions
from routing.engine import Router
from crm.sql_store import SqlCRMStore
from store.wal_checkpoint import checkpointer_for
from leadbot.clock import Clock, SystemClock
from leadbot.logs import get_logger
from leadbot.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route_name(request: web.Request) -> str:
    # match_info is a dict of URL parameters: empty (falsy) for routes without any.
    route = getattr(request.match_info, "route", None)
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


# SQLSTATE classes that are the request's fault or a bug, never an outage: 22 data exception
# (out of range, invalid text, NUL), 23 integrity, 42 syntax/undefined. Retrying cannot help.
_PERMANENT_SQLSTATE_CLASSES = ("22", "23", "42")


def _sqlstate(e: DBAPIError) -> str:
    orig = getattr(e, "orig", None)
    return str(getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None) or "")


def _store_unavailable(e: DBAPIError) -> bool:
    """Bad data, a broken constraint or broken SQL are permanent (retrying forever cannot help);
    every other driver error (refused, lost, shutting down, not accepting connections) is the
    store being away (503: the platform or source retries)."""
    if e.connection_invalidated:
        return True
    if isinstance(e, (IntegrityError, DataError, ProgrammingError)):
        return False
    if _sqlstate(e)[:2] in _PERMANENT_SQLSTATE_CLASSES:
        return False
    # asyncpg refuses a parameter it cannot encode (an int beyond 64 bits, text with NUL) before
    # sending it: the value's fault, not the server's.
    text = str(getattr(e, "orig", "") or "")
    return "invalid input for query argument" not in text and "out of range" not in text


def _unavailable(route_log: Any, route: str, error: str, detail: str) -> web.Response:
    route_log.warning("http.store_unavailable", route=route, error=error, detail=detail)
    resp = json_error(503, "unavailable", "the store is briefly unavailable; retry")
    resp.headers["Retry-After"] = "2"
    return resp


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Metrics for every request, and the guarantee that bad input never becomes a 500:
    HTTP errors pass through, a database outage answers 503 (platforms retry), anything else
    is logged as the bug it is."""
    ctx = request.app[CTX]
    route = _route_name(request)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as e:
        status = e.status
        if e.status == 413:
            ctx.log.info("http.too_large", route=route, path=request.path)
            raise web.HTTPRequestEntityTooLarge(
                max_size=ctx.settings.server.max_body_bytes, actual_size=request.content_length or 0,
                text='{"error": "too_large", "message": "request body exceeds the size cap"}',
                content_type="application/json") from None
        raise
    except (DBAPIError, ConnectionError, OSError) as e:
        if isinstance(e, DBAPIError) and not _store_unavailable(e):
            # The database refused a value of this request (out of range, not storable): the
            # request is wrong and resending it cannot help, so 4xx, never 503 (retried forever).
            status = 422
            ctx.log.warning("http.value_refused", route=route, path=request.path, sqlstate=_sqlstate(e),
                            error=type(e.orig).__name__ if e.orig is not None else type(e).__name__)
            return json_error(422, "unstorable", "the database refused a value in this request "
                                                 "(out of range or not storable text); fix it, do not retry")
        # The store is away (connection refused or lost): 503 so platforms and sources retry.
        status = 503
        # The driver's own message ("database is locked", "connection refused"), never the
        # statement and its parameters, which can hold customer data.
        detail = str(getattr(e, "orig", None) or e)[:200] if isinstance(e, DBAPIError) else str(e)[:200]
        return _unavailable(ctx.log, route, type(e).__name__, detail)
    except SqlPoolTimeout as e:
        # Every pooled connection is busy: the store is saturated, not broken.
        status = 503
        return _unavailable(ctx.log, route, "PoolTimeout", str(e)[:200])
    except asyncio.CancelledError:
        status = 499
        raise
    except Exception:
        ctx.log.exception("http.unhandled", route=route, path=request.path)
        return json_error(500, "internal", "internal error")
    finally:
        ctx.metrics.child(ctx.metrics.requests, route, request.method, str(status)).inc()
        ctx.metrics.child(ctx.metrics.latency, route).observe(time.perf_counter() - started)


@web.middleware
async def read_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The whole body arrives within [server] read_timeout_seconds, or the request is answered
    408: a client trickling a body must not hold a handler (and what it holds) open. The body is
    read here once; handlers' request.read()/json()/post() get the bytes already read."""
    if request.body_exists:
        try:
            async with asyncio.timeout(request.app[CTX].settings.server.read_timeout_seconds):
                await request.read()
        except TimeoutError:
            return json_error(408, "timeout", "the request body did not arrive in time")
    return await handler(request)


def create_app(settings: Settings, *, clock: Clock | None = None, engine: AsyncEngine | None = None,
               start_workers: bool = True) -> web.Application:
    """Builds the aiohttp application. The engine is created here unless one is injected (tests
    share one); background workers start with the app unless `start_workers` is False."""
    clock = clock or SystemClock()
    own_engine = engine is None
    # A serving process (its own engine, its workers running) checkpoints SQLite's WAL in the
    # background instead of inside whichever commit crosses the threshold.
    checkpointer = checkpointer_for(settings.database.url) if own_engine and start_workers else None
    engine = engine or create_engine(settings.database.url, settings.database.echo,
                                     background_checkpoints=checkpointer is not None)
    cap = max(settings.server.max_body_bytes, settings.intake.max_body_bytes)
    app = web.Application(middlewares=[observe, read_deadline], client_max_size=cap)
    ctx = AppContext(settings=settings, clock=clock, engine=engine,
                     store=SqlCRMStore(engine, clock), inbox=Inbox(engine, clock), metrics=Metrics(channels_named_in(settings.assignment.rules)),
                     log=get_logger("leadbot"))
    app[CTX] = ctx
    ctx.services.start_workers = start_workers
    if checkpointer is not None:
        ctx.services.workers.append(checkpointer)
    processor = InboxProcessor(ctx)
    processor.dispatch = dispatch
    processor.register_parser(leads.PLATFORM, leads.parse_internal)
    ctx.services.processor = processor

    setup_health(app)
    setup_intake(app)
    _setup_features(app, ctx)

    async def _start(_: web.Application) -> None:
        if start_workers:
            await processor.start()
            for worker in ctx.services.workers:
                await worker.start()

    async def _stop(_: web.Application) -> None:
        await processor.stop()
        for worker in reversed(ctx.services.workers):
            await worker.stop()
        for stop in reversed(ctx.services.on_shutdown):
            await stop()
        ctx.inbox.close()
        if own_engine:
            await engine.dispose()

    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    return app


def _setup_features(app: web.Application, ctx: AppContext) -> None:
    """Feature packages register their routes, services and workers here, one line each."""
    hooks: list[Callable[[web.Application, AppContext], Any]] = [
        setup_wecom, setup_dingtalk, setup_actions, setup_delivery, setup_h5, setup_scheduler, setup_crm_bridge]
    for hook in hooks:
        hook(app, ctx)


def setup_actions(app: web.Application, ctx: AppContext) -> None:
    """Action tokens, lead actions and the flow behind every button; the signer needs the
    secret from the database, so it is made at start-up."""
    ctx.services.lead_actions = LeadActions(ctx.engine, ctx.clock)
    ctx.services.kv = KeyValueStore(ctx.engine, ctx.clock)
    router = Router(ctx.engine, ctx.settings.assignment, ctx.settings.calendar, ctx.clock, duty=ctx.settings.duty)
    ctx.services.router = router

    async def explain_for_rep(rep: Any, lang: str) -> str:
        leads = await ctx.store.list_leads(owner_id=rep.id, limit=1)
        return await explain_lead(router, leads[0].id, lang) if leads else t("why.none", lang)

    ctx.services.explain_for_rep = explain_for_rep

    async def _start(_: web.Application) -> None:
        secret = await action_secret(ctx.settings.server.secret_key, ctx.services.kv)
        signer = ActionSigner(secret)
        public = ctx.settings.server.public_url or f"http://{ctx.settings.server.host}:{ctx.settings.server.port}"
        buttons = ButtonFactory(signer, public)
        flow = Flow(ctx, buttons)
        services = ctx.services
        services.signer, services.buttons, services.flow = signer, buttons, flow
        services.identity = IdentityActions(ctx)
        services.actions = ActionService(ctx, signer, services.lead_actions, flow)
        effects = AfterEffects(ctx, flow)
        ctx.services.effects = effects
        runner = ctx.services.scheduler
        if runner is not None:
            for kind in EFFECT_KINDS:
                runner.register(kind, effects.sweep_handler(kind))
        ctx.services.on_new_lead = lambda lead: submit_lead(ctx, lead)
        if ctx.services.start_workers:
            await resubmit_unrouted(ctx)

    app.on_startup.insert(0, _start)


def for_serving(app: web.Application) -> web.Application:
    """A long-running server process (`leadbot serve`), not a test: once started, what start-up
    built (modules, table metadata, compiled statements) is never garbage, so it leaves the
    collector's view (gc.freeze) and young collections run less often. Collections were ~5% of
    the loop's CPU per lead in the lead-to-card profile."""
    async def _freeze(_: web.Application) -> None:
        gc.freeze()
        gc.set_threshold(10_000, 10, 10)

    app.on_startup.append(_freeze)
    return app


def setup_scheduler(app: web.Application, ctx: AppContext) -> None:
    """Durable SLA timers and the APScheduler runner that sweeps them."""
    from bot.journey.sla import SlaActions
    from store.timers import TimerStore
    from scheduler.actions import ESCALATE
    from scheduler.runner import SchedulerRunner
    from scheduler.service import LadderService

    timers = TimerStore(ctx.engine, ctx.clock)
    ladder = LadderService(timers, ctx.settings, ctx.clock)
    runner = SchedulerRunner(ctx.engine, ctx.settings, ctx.clock, SlaActions(ctx))

    async def missed_first_touch(lead_id: int) -> bool:
        return any(r.kind == ESCALATE for r in await timers.for_lead(lead_id, ("fired", "firing")))

    services = ctx.services
    services.timers, services.ladder, services.scheduler = timers, ladder, runner
    services.sla_due = ladder.deadline
    services.missed_first_touch = missed_first_touch
    services.is_silent = lambda lead, now: ladder.is_silent(lead)
    services.workers.append(runner)


def setup_delivery(app: web.Application, ctx: AppContext) -> None:
    """The outbox and its delivery worker over whichever platform clients are configured."""
    from bot.platforms.delivery import PlatformSender
    from bot.actions.storm import StormDigests
    from notifications.worker import DeliveryWorker

    dingtalk = ctx.settings.dingtalk
    sender = PlatformSender(ctx.services.wecom_client, ctx.services.dingtalk_client,
                            robot_secret_for=lambda hook: dingtalk.manager_robot_secret if dingtalk else "",
                            lang=ctx.lang)
    # A manager's escalation storm becomes one card with a batch reassign and the full list.
    storm = StormDigests(ctx)
    ctx.services.storm = storm
    worker = DeliveryWorker(ctx.engine, sender, ctx.clock, ctx.settings, registry=ctx.metrics.registry,
                            lease_seconds=ctx.settings.delivery.lease_seconds,
                            send_timeout=ctx.settings.delivery.send_timeout_seconds,
                            render_storm=storm.render,
                            link_for=lambda entry, rep: entry.payload.get("link") or None,
                            after_late_card=lambda copy: _redraw_late(ctx, copy))
    ctx.services.outbox = worker.repo
    ctx.services.delivery_worker = worker
    ctx.services.workers.append(worker)


async def _redraw_late(ctx: AppContext, copy: Any) -> None:
    flow = ctx.services.flow  # absent in a minimal setup without the action side
    if flow is not None:
        await flow.redraw_late_copy(copy)
