"""DingTalk's HTTP edge: event subscription, robot messages and card callbacks, plus the wiring
of the DingTalk client and the Stream transport (`setup_dingtalk`).

Every route verifies first (signature, timestamp window), stores to the inbox under a dedupe
key, and answers at once; bad input is a 4xx with a log line, never a 500.

- ``POST /callbacks/dingtalk/events``: ``?signature|msg_signature&timestamp|timeStamp&nonce``,
  body ``{"encrypt"}``; answered with the encrypted "success" within DingTalk's 1.5 s.
- ``POST /callbacks/dingtalk/robot``: headers ``timestamp`` + ``sign`` (HMAC-SHA256 with the
  app secret; DingTalk allows one hour, leadbot also the replay window); each pair carries one
  message (msgId) only; answered ``{}``.
- ``POST /callbacks/dingtalk/card``: headers ``x-ddpaas-signature-timestamp`` +
  ``x-ddpaas-signature``; handled inline, answered with the card data to show (2 s).

``replay_window_seconds = 0`` turns every timestamp check off (replaying recorded vectors);
otherwise a robot message is accepted within DingTalk's own hour (D12), events and card taps
within the window.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web

from bot.context import AppContext, ctx_of
from bot.api.errors import json_error
from bot.platforms.dingtalk.client import DingTalkClient
from bot.platforms.dingtalk.crypto import (CallbackRejected, EventCipher, card_sign, check_fresh, loads_object,
                                           parse_epoch, robot_sign, same_sign)
from bot.platforms.dingtalk.inbound import DingTalkInbound
from bot.platforms.dingtalk.normalize import NotNormalisable, event_from_http, to_event
from store.kv import KeyValueStore
from leadbot.settings import DingTalkSettings

ROBOT_WINDOW_SECONDS = 3600
# Answered "success" without an inbox row: DingTalk checking that the URL works.
CHECK_EVENTS = frozenset({"check_url", "check_create_suite_url", "check_update_suite_url"})


@dataclass
class DingTalkEdge:
    settings: DingTalkSettings
    inbound: DingTalkInbound
    client: DingTalkClient
    cipher: EventCipher | None
    seen: KeyValueStore  # robot (timestamp, sign) pairs already used
    pending: set[asyncio.Future[Any]] = field(default_factory=set)  # sign checks left to finish


EDGE: web.AppKey[DingTalkEdge] = web.AppKey("dingtalk_edge", DingTalkEdge)


def _reject(ctx: AppContext, route: str, e: CallbackRejected) -> web.Response:
    ctx.metrics.callbacks.labels("dingtalk", "rejected").inc()
    ctx.log.info("dingtalk.callback_rejected", route=route, reason=e.reason, status=e.status)
    return json_error(e.status, e.reason, e.message)


def _now_ms(ctx: AppContext) -> int:
    return int(ctx.clock.now().timestamp() * 1000)


async def events(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    edge = request.app[EDGE]
    if edge.cipher is None:
        return json_error(404, "not_configured", "set [dingtalk] token and aes_key to receive events")
    q = request.query
    signature = q.get("signature") or q.get("msg_signature") or ""
    timestamp = q.get("timestamp") or q.get("timeStamp") or ""
    nonce = q.get("nonce") or ""
    try:
        if not signature or not timestamp or not nonce:
            raise CallbackRejected("missing_query", 400, "signature, timestamp and nonce are required")
        check_fresh(parse_epoch(timestamp), ctx.clock.now(), ctx.settings.server.replay_window_seconds)
        body = loads_object(await request.read())
        encrypt = body.get("encrypt")
        if not isinstance(encrypt, str) or not encrypt:
            raise CallbackRejected("missing_encrypt", 400, "body has no encrypt field")
        decrypted = edge.cipher.decrypt(signature, timestamp, nonce, encrypt)
        plain = loads_object(decrypted.plaintext)
        event_type = str(plain.get("EventType") or plain.get("eventType") or "")
        if event_type in CHECK_EVENTS:
            ctx.log.info("dingtalk.check_url", event_type=event_type)
        else:
            try:
                item = event_from_http(plain, ctx.clock.now())
            except NotNormalisable as e:
                raise CallbackRejected("malformed_event", 400, str(e)) from None
            await edge.inbound.accept(item, "http")
    except CallbackRejected as e:
        return _reject(ctx, "events", e)
    reply = edge.cipher.encrypt_reply("success", decrypted.receive_id, str(_now_ms(ctx)))
    return web.json_response(reply)


async def robot(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    edge = request.app[EDGE]
    timestamp = request.headers.get("timestamp", "").strip()
    sign = request.headers.get("sign", "")
    try:
        if not timestamp or not sign:
            raise CallbackRejected("missing_sign", 401, "timestamp and sign headers are required")
        window = ctx.settings.server.replay_window_seconds
        # conformance D12 (dt robot receive docs): a robot message is valid for 1 h after its
        # timestamp and never redelivered, so refusing one younger than that loses it; replays
        # inside the hour are the inbox's msgId dedupe. Events and card taps keep the window.
        check_fresh(parse_epoch(timestamp), ctx.clock.now(), ROBOT_WINDOW_SECONDS if window else 0)
        if not same_sign(robot_sign(timestamp, edge.settings.app_secret), sign):
            raise CallbackRejected("bad_signature", 403, "sign does not match")
        body = loads_object(await request.read())
        unchecked = await _once(ctx, edge, timestamp, sign, body)
        await edge.inbound.accept_robot(body, "http", once=unchecked)
    except CallbackRejected as e:
        return _reject(ctx, "robot", e)
    return web.json_response({})


async def _once(ctx: AppContext, edge: DingTalkEdge, timestamp: str, sign: str,
                body: dict[str, Any]) -> dict[str, Any] | None:
    """A (timestamp, sign) pair carries one message. The sign covers only the timestamp, not
    the body, so a captured pair would otherwise carry any body for the whole window. The pair is
    kept (in the database, shared by every process) with the message id it came with: DingTalk
    resending that message passes (the inbox dedupes it), another body under it is refused.

    The check is a database write: when SQLite's write lock is held elsewhere past the ack budget
    it is not refused (DingTalk never redelivers a robot message, D12) but handed back undecided
    (the lease to take) and the message goes to the spill journal with it; the replay takes the
    lease before the row is stored, so a replayed pair is still refused, only later."""
    msg_id = str(body.get("msgId") or "")
    if not msg_id:
        raise CallbackRejected("missing_msg_id", 400, "robot message without msgId")
    key = "robot-sign:" + hashlib.sha256(f"{timestamp}\n{sign}".encode("utf-8", "replace")).hexdigest()
    owner, ttl = msg_id[:200], timedelta(seconds=ROBOT_WINDOW_SECONDS)
    lease = asyncio.ensure_future(edge.seen.try_lease(key, owner, ttl))
    while ctx.inbox.can_defer:
        try:
            won = await asyncio.wait_for(asyncio.shield(lease), ctx.inbox.ACK_WRITE_SECONDS)
            break
        except asyncio.TimeoutError:
            if not await ctx.inbox.write_locked():
                continue  # slow, not blocked: it is on its way
            # Left to finish in the background (the replay's try_lease for the same message wins
            # either way); its outcome is consumed so an error is not reported as unretrieved.
            edge.pending.add(lease)
            lease.add_done_callback(lambda f: edge.pending.discard(f) or f.cancelled() or f.exception())
            return {"key": key, "owner": owner, "ttl_seconds": ROBOT_WINDOW_SECONDS}
    else:
        won = await lease
    if not won:
        raise CallbackRejected("replayed_sign", 401, "this timestamp and sign were used for another message")
    return None


async def card(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    edge = request.app[EDGE]
    timestamp = request.headers.get("x-ddpaas-signature-timestamp", "").strip()
    sign = request.headers.get("x-ddpaas-signature", "")
    secret = edge.settings.card_callback_secret or edge.settings.app_secret
    try:
        if not timestamp or not sign:
            raise CallbackRejected("missing_sign", 401, "x-ddpaas-signature headers are required")
        when = parse_epoch(timestamp)
        check_fresh(when, ctx.clock.now(), ctx.settings.server.replay_window_seconds)
        if not same_sign(card_sign(timestamp, secret), sign):
            raise CallbackRejected("bad_signature", 403, "signature does not match")
        body = loads_object(await request.read())
        try:
            response = await edge.inbound.accept_card(body, int(timestamp) if timestamp.isdigit() else None, "http")
        except NotNormalisable as e:
            raise CallbackRejected("malformed_card_callback", 400, str(e)) from None
    except CallbackRejected as e:
        return _reject(ctx, "card", e)
    return web.json_response(response)


def setup_dingtalk(app: web.Application, ctx: AppContext) -> None:
    """Routes, the API client (``ctx.services.dingtalk_client``), the inbox parser and, with
    ``[dingtalk] stream = true``, the Stream transport. Nothing when [dingtalk] is absent."""
    dt = ctx.settings.dingtalk
    if dt is None:
        return
    client = DingTalkClient(dt, clock=ctx.clock, token_store=KeyValueStore(ctx.engine, ctx.clock), log=ctx.log)
    inbound = DingTalkInbound(ctx)
    cipher = EventCipher(dt.token, dt.aes_key, dt.receive_ids) if dt.token and dt.aes_key else None
    app[EDGE] = DingTalkEdge(dt, inbound, client, cipher, KeyValueStore(ctx.engine, ctx.clock))
    ctx.services.dingtalk_client = client
    ctx.services.dingtalk_inbound = inbound
    processor = ctx.services.processor
    if processor is not None:
        processor.register_parser("dingtalk", to_event)

    app.router.add_post("/callbacks/dingtalk/events", events, name="dingtalk_events")
    app.router.add_post("/callbacks/dingtalk/robot", robot, name="dingtalk_robot")
    app.router.add_post("/callbacks/dingtalk/card", card, name="dingtalk_card")

    shutdown: list[Any] = ctx.services.on_shutdown
    shutdown.append(client.close)

    public_url = ctx.settings.server.public_url.rstrip("/")
    if not dt.stream and public_url and dt.card_template_id:
        # HTTP card callbacks reach leadbot only once its URL is registered under the route key
        # the cards are created with; done at every start (forceUpdate) so a moved URL follows.
        pending: list[asyncio.Task[None]] = []

        async def _register() -> None:
            try:
                await client.register_card_callback(public_url + "/callbacks/dingtalk/card")
                ctx.log.info("dingtalk.card_callback_registered", route_key=client.card_route_key)
            except Exception as e:
                ctx.log.warning("dingtalk.card_callback_register_failed", error=str(e)[:200])

        async def _start_register(_: web.Application) -> None:
            pending.append(asyncio.create_task(_register()))

        async def _stop_register() -> None:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        app.on_startup.append(_start_register)
        shutdown.append(_stop_register)

    if dt.stream:
        from bot.platforms.dingtalk.stream import StreamTransport

        transport = StreamTransport(client, inbound)
        ctx.services.dingtalk_stream = transport

        async def _start_stream(_: web.Application) -> None:
            transport.start()

        app.on_startup.append(_start_stream)
        shutdown.append(transport.stop)
