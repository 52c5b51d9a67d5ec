"""Stream mode: the second transport, for deployments without a public address.

DingTalk pushes the same events, robot messages and card callbacks over a WebSocket that leadbot
opens (outbound 443 only, no crypto of ours). The frames go through dingtalk-stream's frame
classes and router (`DingTalkStreamClient.route_message`, which also answers pings), into the
same `normalize` functions and the same inbox as the HTTP callbacks.

Two parts of dingtalk-stream are replaced because they block the event loop (`requests`) or
ignore leadbot's config: opening the connection (through leadbot's async client and
``api_base``) and the reconnect loop (with an injectable sleep and a clean stop).
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import dingtalk_stream
from dingtalk_stream import AckMessage, CallbackHandler, CallbackMessage, EventHandler, EventMessage

from bot.platforms.dingtalk.normalize import CARD_TOPIC, ROBOT_TOPIC, NotNormalisable, event_from_stream
from leadbot.tasks import cancel_and_wait

if TYPE_CHECKING:
    from bot.platforms.dingtalk.client import DingTalkClient
    from bot.platforms.dingtalk.inbound import DingTalkInbound

Sleep = Callable[[float], Awaitable[Any]]


def _headers_dict(headers: Any) -> dict[str, Any]:
    """dingtalk-stream's Headers object back to the frame's JSON keys."""
    out = dict(headers.to_dict()) if hasattr(headers, "to_dict") else {}
    for attr, key in (("event_type", "eventType"), ("event_id", "eventId"),
                      ("event_born_time", "eventBornTime"), ("event_corp_id", "eventCorpId")):
        value = getattr(headers, attr, None)
        if value is not None:
            out[key] = value
    return out


class LeadbotEventHandler(EventHandler):
    """EVENT frames -> inbox. The ack carries ``{"status": "SUCCESS"}`` once the row is stored
    (dingtalk-stream's default ack echoes the data and lacks the status), ``LATER`` when the
    store is unavailable so that DingTalk delivers the event again."""

    def __init__(self, inbound: "DingTalkInbound") -> None:
        super().__init__()
        self.inbound = inbound

    async def process(self, event: EventMessage) -> tuple[int, str]:  # type: ignore[override]
        try:
            item = event_from_stream({"headers": _headers_dict(event.headers), "data": event.data},
                                     self.inbound.ctx.clock.now())
        except NotNormalisable as e:
            self.inbound.ctx.log.info("dingtalk.stream_event_rejected", reason=str(e))
            return AckMessage.STATUS_BAD_REQUEST, "SUCCESS"  # malformed: redelivery would not help
        try:
            await self.inbound.accept(item, "stream")
        except Exception:
            self.inbound.ctx.log.exception("dingtalk.stream_event_store_failed")
            return AckMessage.STATUS_OK, "LATER"
        return AckMessage.STATUS_OK, "SUCCESS"

    async def raw_process(self, event_message: EventMessage) -> AckMessage:  # type: ignore[override]
        code, status = await self.process(event_message)
        ack = AckMessage()
        ack.code = code
        ack.headers.message_id = event_message.headers.message_id
        ack.headers.content_type = "application/json"
        # conformance D8 (open-dingtalk/developerpedia docs/learn/stream/protocol.md): an event's
        # ack data carries status and message (the table marks message optional; sent always).
        ack.message = "OK" if status == "SUCCESS" else "later"
        ack.data = {"status": status, "message": ack.message}
        return ack


class LeadbotRobotHandler(CallbackHandler):
    """CALLBACK frames on the robot topic: same JSON as the HTTP robot POST body."""

    def __init__(self, inbound: "DingTalkInbound") -> None:
        super().__init__()
        self.inbound = inbound

    async def process(self, message: CallbackMessage) -> tuple[int, Any]:  # type: ignore[override]
        if not isinstance(message.data, dict) or not message.data:
            return AckMessage.STATUS_BAD_REQUEST, "malformed"
        try:
            await self.inbound.accept_robot(message.data, "stream")
        except Exception:
            self.inbound.ctx.log.exception("dingtalk.stream_robot_store_failed")
            return AckMessage.STATUS_SYSTEM_EXCEPTION, "error"
        return AckMessage.STATUS_OK, "OK"


class LeadbotCardHandler(CallbackHandler):
    """CALLBACK frames on the card topic: handled inline; the ack's ``response`` is the card
    data to show, exactly what the HTTP callback answers."""

    def __init__(self, inbound: "DingTalkInbound") -> None:
        super().__init__()
        self.inbound = inbound

    async def process(self, message: CallbackMessage) -> tuple[int, Any]:  # type: ignore[override]
        if not isinstance(message.data, dict) or not message.data:
            return AckMessage.STATUS_BAD_REQUEST, {}
        try:
            response = await self.inbound.accept_card(message.data, message.headers.time, "stream")
        except NotNormalisable:
            return AckMessage.STATUS_BAD_REQUEST, {}
        except Exception:
            self.inbound.ctx.log.exception("dingtalk.stream_card_failed")
            return AckMessage.STATUS_SYSTEM_EXCEPTION, {}
        return AckMessage.STATUS_OK, response


class _Router(dingtalk_stream.DingTalkStreamClient):
    """dingtalk-stream's client used only as a frame router: leadbot owns the connection."""


class StreamTransport:
    SUBSCRIPTIONS = ({"type": "EVENT", "topic": "*"},
                     {"type": "CALLBACK", "topic": ROBOT_TOPIC},
                     {"type": "CALLBACK", "topic": CARD_TOPIC})

    def __init__(self, client: "DingTalkClient", inbound: "DingTalkInbound", *, sleep: Sleep = asyncio.sleep,
                 connect: Callable[[str], Any] | None = None, reconnect_delays: tuple[float, ...] = (1, 2, 5, 10, 30)) -> None:
        self.client = client
        self.inbound = inbound
        self.sleep = sleep
        self._connect = connect
        self.reconnect_delays = reconnect_delays
        settings = client.settings
        self.router = _Router(dingtalk_stream.Credential(settings.app_key, settings.app_secret))
        self.router.register_all_event_handler(LeadbotEventHandler(inbound))
        self.router.register_callback_handler(ROBOT_TOPIC, LeadbotRobotHandler(inbound))
        self.router.register_callback_handler(CARD_TOPIC, LeadbotCardHandler(inbound))
        self.router.pre_start()
        self._task: asyncio.Task[None] | None = None
        self._frames: set[asyncio.Task[Any]] = set()
        self.connected = asyncio.Event()

    async def handle_frame(self, raw: str | bytes | dict[str, Any], websocket: Any = None) -> Any:
        """Routes one frame (and sends its ack on ``websocket``); also the entry point for tests."""
        frame = raw if isinstance(raw, dict) else json.loads(raw)
        if websocket is not None:
            self.router.websocket = websocket
        return await self.router.route_message(frame)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="dingtalk-stream")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        for t in list(self._frames):
            t.cancel()

    def _ws_connect(self, uri: str) -> Any:
        if self._connect is not None:
            return self._connect(uri)
        import websockets

        return websockets.connect(uri)

    async def _run(self) -> None:
        log = self.inbound.ctx.log
        failures = 0
        while True:
            try:
                conn = await self.client.open_stream_connection(self.SUBSCRIPTIONS)
                uri = f"{conn['endpoint']}?ticket={urllib.parse.quote_plus(conn['ticket'])}"
                async with self._ws_connect(uri) as ws:
                    self.router.websocket = ws
                    self.connected.set()
                    failures = 0
                    log.info("dingtalk.stream_connected")
                    async for raw in ws:
                        task = asyncio.create_task(self._frame(raw, ws))
                        self._frames.add(task)
                        task.add_done_callback(self._frames.discard)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("dingtalk.stream_disconnected", error=f"{type(e).__name__}: {e}"[:200])
            self.connected.clear()
            delay = self.reconnect_delays[min(failures, len(self.reconnect_delays) - 1)]
            failures += 1
            await self.sleep(delay)

    async def _frame(self, raw: Any, ws: Any) -> None:
        try:
            if await self.handle_frame(raw, ws) == dingtalk_stream.DingTalkStreamClient.TAG_DISCONNECT:
                await ws.close()  # DingTalk is about to close it; reconnect at once
        except Exception:
            self.inbound.ctx.log.exception("dingtalk.stream_frame_failed")
