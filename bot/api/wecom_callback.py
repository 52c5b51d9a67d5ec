"""`GET|POST /callbacks/wecom`: the WeCom app callback, and `setup_wecom`, which wires the WeCom
edge (route, parser, API client) into the app.

GET answers the URL check with the decrypted echostr. POST verifies, decrypts, stores the event
in the inbox under its dedupe key and answers an empty 200 at once (WeCom re-sends what is not
answered within 5 s); the inbox processor does the work. Card taps are the exception: WeCom lets
the answer carry a passive reply that updates the tapped card, so they are processed inline for
up to INLINE_REPLY_SECONDS, under the same dedupe key.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.context import AppContext, ctx_of
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.crypto import CallbackCrypto, CallbackRejected
from bot.platforms.wecom.parse import CARD_EVENTS, MissingField, dedupe_key, kind_of, parse_event
from bot.platforms.wecom.reply import card_update_from, passive_reply_xml
from store.inbox import DEFERRED
from store.kv import KeyValueStore

# WeCom waits 5 s; leave room for the database write, encryption and the network.
INLINE_REPLY_SECONDS = 3.0


@dataclass
class WeComEdge:
    crypto: CallbackCrypto
    corp_id: str
    inline_timeout: float = INLINE_REPLY_SECONDS


WECOM_EDGE: web.AppKey[WeComEdge] = web.AppKey("wecom_edge", WeComEdge)


def _reject(ctx: AppContext, request: web.Request, e: CallbackRejected) -> web.Response:
    ctx.metrics.callbacks.labels("wecom", f"rejected_{e.reason}").inc()
    ctx.log.warning("wecom.callback_rejected", reason=e.reason, detail=e.detail[:200], status=e.status,
                    method=request.method, remote=request.remote or "")
    return web.Response(status=e.status, text=e.reason)


def _params(request: web.Request, *names: str) -> list[str]:
    values = []
    for name in names:
        value = request.query.get(name, "")
        if not value:
            raise CallbackRejected(400, "missing_parameter", name)
        values.append(value)
    return values


def _check_timestamp(ctx: AppContext, timestamp: str) -> None:
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise CallbackRejected(400, "bad_timestamp", timestamp[:20])
    window = ctx.settings.server.replay_window_seconds
    if window <= 0:
        return  # 0 turns the check off (replaying the official vectors needs it)
    skew = abs(ctx.clock.now().timestamp() - int(timestamp))
    if skew > window:
        raise CallbackRejected(403, "stale_timestamp", f"{int(skew)} s off")


async def _read_capped(request: web.Request, cap: int) -> bytes:
    if request.content_length is not None:
        if request.content_length > cap:
            raise CallbackRejected(413, "too_large", str(request.content_length))
        # aiohttp's parser delivers exactly Content-Length bytes, so one read is capped too.
        return await request.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(16 * 1024):
        size += len(chunk)
        if size > cap:
            raise CallbackRejected(413, "too_large", f">{cap}")
        chunks.append(chunk)
    return b"".join(chunks)


async def wecom_verify_url(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    edge = request.app[WECOM_EDGE]
    try:
        sig, timestamp, nonce, echostr = _params(request, "msg_signature", "timestamp", "nonce", "echostr")
        # A '+' sent unencoded arrives as a space; base64 never contains spaces.
        echostr = echostr.replace(" ", "+")
        _check_timestamp(ctx, timestamp)
        plain = edge.crypto.verify_url(sig, timestamp, nonce, echostr)
    except CallbackRejected as e:
        return _reject(ctx, request, e)
    ctx.metrics.callbacks.labels("wecom", "url_verified").inc()
    ctx.log.info("wecom.url_verified")
    return web.Response(text=plain, content_type="text/plain")


async def wecom_event(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    edge = request.app[WECOM_EDGE]
    try:
        sig, timestamp, nonce = _params(request, "msg_signature", "timestamp", "nonce")
        _check_timestamp(ctx, timestamp)
        body = await _read_capped(request, ctx.settings.server.max_body_bytes)
        decrypted = edge.crypto.decrypt_body(sig, timestamp, nonce, body)
        fields = decrypted.fields
        try:
            key = dedupe_key(fields)
        except MissingField as e:
            raise CallbackRejected(400, "missing_field", str(e)) from None
    except CallbackRejected as e:
        return _reject(ctx, request, e)
    kind = kind_of(fields)
    entry_id = await ctx.inbox.put("wecom", key, kind, fields, within=ctx.inbox.ACK_WRITE_SECONDS)
    if entry_id == DEFERRED:
        # SQLite's write lock is held elsewhere: the event is in the spill journal (on disk), and
        # WeCom gets its answer in time; a tap then has no passive reply (its card follows the
        # lead when the journal is replayed).
        ctx.metrics.child(ctx.metrics.callbacks, "wecom", "deferred").inc()
        ctx.log.warning("wecom.callback_deferred", kind=kind)
        return web.Response(text="")
    # Per-callback lines are debug: at 1,000 callbacks/s an info line each (render, scrub, write)
    # was a measurable share of the ack path; the callbacks counter keeps the numbers, and
    # rejects stay warnings.
    if entry_id is None:
        ctx.metrics.child(ctx.metrics.callbacks, "wecom", "duplicate").inc()
        ctx.log.debug("wecom.callback_duplicate", kind=kind)
        return web.Response(text="")
    ctx.metrics.child(ctx.metrics.callbacks, "wecom", "accepted").inc()
    ctx.log.debug("wecom.callback", kind=kind, entry_id=entry_id)
    processor = ctx.services.processor
    if processor is None:
        return web.Response(text="")
    if fields.get("MsgType") == "event" and fields.get("Event") in CARD_EVENTS:
        reply = await _inline_card_reply(ctx, edge, processor, entry_id, fields)
        if reply is not None:
            return web.Response(text=reply, content_type="text/xml")
        return web.Response(text="")
    processor.notify()
    return web.Response(text="")


async def _inline_card_reply(ctx: AppContext, edge: WeComEdge, processor: Any, entry_id: int,
                             fields: dict[str, Any]) -> str | None:
    task = asyncio.ensure_future(processor.process(entry_id))
    try:
        # shield: on timeout the work goes on (and may update the card through the API later);
        # only the passive answer is given up.
        result = await asyncio.wait_for(asyncio.shield(task), timeout=edge.inline_timeout)
    except asyncio.TimeoutError:
        # Too late for a passive reply (WeCom applies one only inside its 5 s window): once the
        # work is done, the tapped copy is updated with the tap's own code instead.
        processor.answer_late(task)
        ctx.log.warning("wecom.card_reply_timeout", entry_id=entry_id, timeout=edge.inline_timeout)
        return None
    update = card_update_from(result)
    if update is None:
        return None
    to_user = fields.get("FromUserName")
    plain = passive_reply_xml(update, to_user=to_user if isinstance(to_user, str) else "",
                              corp_id=edge.corp_id, create_time=int(ctx.clock.now().timestamp()))
    ctx.metrics.callbacks.labels("wecom", "card_reply").inc()
    return edge.crypto.encrypt_reply(plain, ctx.clock.now())


def setup_wecom(app: web.Application, ctx: AppContext) -> None:
    """Does nothing when [wecom] is absent."""
    ws = ctx.settings.wecom
    if ws is None:
        return
    edge = WeComEdge(crypto=CallbackCrypto(ws.token, ws.encoding_aes_key, ws.corp_id), corp_id=ws.corp_id)
    app[WECOM_EDGE] = edge
    resource = app.router.add_resource("/callbacks/wecom", name="wecom_callback")
    resource.add_route("GET", wecom_verify_url)
    resource.add_route("POST", wecom_event)

    client = WeComClient(corp_id=ws.corp_id, secret=ws.secret, agent_id=ws.agent_id, api_base=ws.api_base,
                         clock=ctx.clock, token_store=KeyValueStore(ctx.engine, ctx.clock), log=ctx.log,
                         robot_key=ws.manager_robot_key)
    ctx.services.wecom_client = client
    processor = ctx.services.processor
    if processor is not None:
        processor.register_parser("wecom", parse_event)

    async def _shutdown() -> None:
        await client.close()

    ctx.services.on_shutdown.append(_shutdown)
