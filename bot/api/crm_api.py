"""The CRM bridge's HTTP side (docs/crm_bridge.md), wired by ``setup_crm_bridge``:

Inbound (Bearer token from ``[crm_bridge] api_tokens``; with none configured the inbound API is
closed: a lead source's intake token never writes CRM records):
- ``PUT  /api/v1/customers/{external_id}``                 upsert a customer by the CRM's id
- ``GET  /api/v1/customers/{external_id}``
- ``POST /api/v1/customers/{external_id}/do-not-contact``  ``{"do_not_contact": true}``
- ``PUT  /api/v1/leads/{external_id}``                     upsert a lead by the CRM's id
- ``GET  /api/v1/leads/external/{external_id}``
- ``POST /api/v1/leads/{external_id}/stage``               ``{"stage": "..."}``  (command)
- ``POST /api/v1/leads/{external_id}/owner``               ``{"owner": "<rep id>"}`` (command)

Outbound: ``WebhookSender`` wraps the platform sender for the outbox channel ``webhook``: it
holds an event back while an earlier one of the same entity is pending (in order), signs the
body and POSTs it.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

import aiohttp
from aiohttp import web

from bot.api.auth import bearer_ok
from bot.context import AppContext, ctx_of
from bot.api.errors import json_error
from crm_bridge.capture import CHANNEL, ChangeCapture
from crm_bridge.events import encode, signed_headers
from crm_bridge.gate import EntityOrderGate
from crm_bridge.inbound import CrmInbound, InboundError, WriteResult
from leadbot.clock import Clock
from notifications.sender import DeliveryResult, OutboundMessage, Sender

RETRY_STATUSES = (408, 425, 429, 500, 502, 503, 504)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


# ---- outbound ----------------------------------------------------------------------------------

class WebhookSender:
    """The ``webhook`` channel over HTTP; every other channel goes to ``inner``."""

    def __init__(self, inner: Sender, gate: EntityOrderGate, secret: str, clock: Clock, *,
                 timeout: float = 10.0) -> None:
        self.inner = inner
        self.gate = gate
        self.secret = secret
        self.clock = clock
        self.timeout = timeout
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        if message.channel != CHANNEL:
            return await self.inner.send(message)
        wait = await self.gate.wait_seconds(message.key, message.recipient)
        if wait is not None:
            return DeliveryResult.failed("blocked", "an earlier event of this entity is not delivered yet",
                                         retry_after=wait)
        event = message.payload.get("event")
        if not isinstance(event, dict):
            return DeliveryResult.failed("permanent", "outbox row without an event")
        body = encode(event)
        headers = signed_headers(self.secret, str(event.get("event_id", "")), int(self.clock.now().timestamp()), body)
        if self._http is None:
            self._http = aiohttp.ClientSession()
        try:
            async with self._http.post(message.recipient, data=body, headers=headers,
                                       timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                text = (await resp.text())[:300]
                status = resp.status
                retry_after = resp.headers.get("Retry-After", "")
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            return DeliveryResult.failed("retry", f"{type(e).__name__}: {e}")
        if 200 <= status < 300:
            return DeliveryResult.sent(http_status=status)
        after = float(retry_after) if retry_after.isdigit() else None
        if status in RETRY_STATUSES:
            return DeliveryResult.failed("retry", f"HTTP {status}: {text}", retry_after=after)
        return DeliveryResult.failed("permanent", f"HTTP {status}: {text}")


# ---- inbound -----------------------------------------------------------------------------------

def _tokens(ctx: AppContext) -> tuple[str, ...]:
    cfg = ctx.settings.crm_bridge
    return cfg.api_tokens if cfg is not None else ()


def _authorized(ctx: AppContext, request: web.Request) -> bool:
    return bearer_ok(request.headers.get("Authorization", ""), _tokens(ctx))


Route = Callable[[web.Request, AppContext, CrmInbound], Awaitable[web.Response]]


def _endpoint(route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        ctx = ctx_of(request)
        if not _tokens(ctx):
            # Closed, and says how to open it: an admin reading this should not guess.
            resp = json_error(401, "unauthorized", "the inbound CRM API is off: set [crm_bridge] api_tokens")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="leadbot"'
            return resp
        if not _authorized(ctx, request):
            resp = json_error(401, "unauthorized", "missing or invalid Bearer token")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="leadbot"'
            return resp
        try:
            return await route(request, ctx, ctx.services.crm_inbound)
        except InboundError as e:
            ctx.log.info("crm.inbound_refused", status=e.status, code=e.code, path=request.path)
            return json_error(e.status, e.code, e.message, **e.extra)

    return handler


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        raise InboundError("empty body: send a JSON object")
    try:
        data = json.loads(raw.decode(request.charset or "utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, LookupError, ValueError, RecursionError) as e:
        raise InboundError(f"body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise InboundError(f"expected a JSON object, got {type(data).__name__}")
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InboundError("body contains a lone surrogate escape (invalid Unicode)") from None
    return data


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; stored, they would be served back as invalid JSON.
    raise ValueError(f"{name} is not a JSON number")


def _answer(result: WriteResult, status: int | None = None) -> web.Response:
    resp = web.json_response(result.to_json(), status=status or (201 if result.created else 200), dumps=_dumps)
    resp.headers["ETag"] = f'"{result.version}"'
    return resp


def _actor(request: web.Request) -> str:
    return f"crm:{request.headers.get('X-Actor', '')[:100]}".rstrip(":")


async def _after_lead_write(ctx: AppContext, result: WriteResult) -> None:
    """Cards follow the CRM: a new lead is routed (or offered to the owner the CRM named), a
    changed one updates every delivered copy of its card."""
    flow = ctx.services.flow
    lead = await ctx.store.get_lead(int(result.entity["id"]))
    if flow is None or lead is None:
        return
    if result.created:
        if lead.owner_id is None:
            on_new = ctx.services.on_new_lead
            if on_new is not None:
                await on_new(lead)
            return
        # Offered to the owner the CRM named, with their ladder, as if it had been given to them.
        await flow.after_owner_change(lead, None)
        return
    if not result.changed:
        return
    if "owner" in result.changed:
        # A new owner from the CRM is a reassignment like a manager's: the same after-effects.
        await flow.after_owner_change(lead, result.previous_owner_id)
        return
    await flow.update_copies(lead, f"crm{lead.version}")


async def _fresh(inbound: CrmInbound, result: WriteResult) -> WriteResult:
    """The answer shows the lead after the side effects (routing), with the version to send next."""
    if result.entity.get("external_id") is None:
        return result
    snap = await inbound.lead(str(result.entity["external_id"]))
    return WriteResult(result.entity_type, snap, result.created, result.changed, result.ignored)


async def put_customer(request: web.Request, ctx: AppContext, inbound: CrmInbound) -> web.Response:
    result = await inbound.upsert_customer(request.match_info["external_id"], await _json_body(request),
                                           if_match=request.headers.get("If-Match"), actor=_actor(request))
    return _answer(result)


async def get_customer(request: web.Request, ctx: AppContext, inbound: CrmInbound) -> web.Response:
    snap = await inbound.customer(request.match_info["external_id"])
    resp = web.json_response({"customer": snap, "version": snap["version"]}, dumps=_dumps)
    resp.headers["ETag"] = f'"{snap["version"]}"'
    return resp


async def post_do_not_contact(request: web.Request, ctx: AppContext, inbound: CrmInbound) -> web.Response:
    body = await _json_body(request)
    result = await inbound.set_do_not_contact(request.match_info["external_id"], body.get("do_not_contact"),
                                              if_match=request.headers.get("If-Match"), actor=_actor(request))
    return _answer(result, 200)


async def put_lead(request: web.Request, ctx: AppContext, inbound: CrmInbound) -> web.Response:
    result = await inbound.upsert_lead(request.match_info["external_id"], await _json_body(request),
                                       if_match=request.headers.get("If-Match"), actor=_actor(request))
    await _after_lead_write(ctx, result)
    return _answer(await _fresh(inbound, result))


async def get_lead_external(request: web.Request, ctx: AppContext, inbound: CrmInbound) -> web.Response:
    snap = await inbound.lead(request.match_info["external_id"])
    resp = web.json_response({"lead": snap, "version": snap["version"]}, dumps=_dumps)
    resp.headers["ETag"] = f'"{snap["version"]}"'
    return resp


def _command(field_name: str) -> Route:
    async def route(request: web.Request, ctx: AppContext, inbound: CrmInbound) -> web.Response:
        body = await _json_body(request)
        if field_name not in body:
            raise InboundError(f"{field_name}: missing", field=field_name)
        result = await inbound.command_lead(request.match_info["external_id"], body,
                                            if_match=request.headers.get("If-Match"), actor=_actor(request))
        await _after_lead_write(ctx, result)
        return _answer(await _fresh(inbound, result), 200)

    return route


# ---- wiring ------------------------------------------------------------------------------------

def setup_crm_bridge(app: web.Application, ctx: AppContext) -> None:
    """Off unless [crm_bridge] is configured. Needs setup_delivery first (it wraps its sender)."""
    cfg = ctx.settings.crm_bridge
    if cfg is None:
        return
    inbound = CrmInbound(ctx.engine, ctx.clock, cfg.owners, ctx.settings.pipeline.stage_names)
    ctx.services.crm_inbound = inbound
    r = app.router
    r.add_put("/api/v1/customers/{external_id}", _endpoint(put_customer), name="crm_customer_put")
    r.add_get("/api/v1/customers/{external_id}", _endpoint(get_customer), name="crm_customer_get")
    r.add_post("/api/v1/customers/{external_id}/do-not-contact", _endpoint(post_do_not_contact),
               name="crm_customer_dnc")
    r.add_put("/api/v1/leads/{external_id}", _endpoint(put_lead), name="crm_lead_put")
    r.add_get("/api/v1/leads/external/{external_id}", _endpoint(get_lead_external), name="crm_lead_get")
    r.add_post("/api/v1/leads/{external_id}/stage", _endpoint(_command("stage")), name="crm_lead_stage")
    r.add_post("/api/v1/leads/{external_id}/owner", _endpoint(_command("owner")), name="crm_lead_owner")

    if not cfg.webhook_urls:
        return
    worker = ctx.services.delivery_worker
    if worker is None:
        raise RuntimeError("setup_crm_bridge needs the delivery worker (setup_delivery) first")
    capture = ChangeCapture(cfg.webhook_urls, ctx.clock, on_enqueued=worker.wake)
    capture.install(ctx.engine)
    sender = WebhookSender(worker.sender, EntityOrderGate(ctx.engine, ctx.clock), cfg.webhook_secret, ctx.clock,
                           timeout=cfg.webhook_timeout_seconds)
    worker.sender = sender
    ctx.services.crm_capture = capture
    ctx.services.crm_webhook_sender = sender

    async def _close() -> None:
        ChangeCapture.uninstall(ctx.engine)
        await sender.close()

    ctx.services.on_shutdown.append(_close)
