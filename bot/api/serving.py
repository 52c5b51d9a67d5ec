"""Serving leadbot on a TCP port, with a bound on how long a client may take to send its request
headers (issue 18 #8: a client trickling its headers must not hold a connection open for ever).

aiohttp has no header read timeout (its `slow_request_timeout` was removed in 2.0), and
`max_line_size` / `max_field_size` bound the size of a header, not its time. What it does have is
the keep-alive timer: armed when a response ends, and not pushed back by bytes arriving, so it
already bounds how long the *next* request's headers may take on a kept-alive connection (and,
from aiohttp 3.14, also arms at connect). For the first request on every aiohttp this project
allows (>= 3.10) nothing did, so `HeaderDeadline` adds the missing timer at the protocol level:
armed when the connection is made, disarmed when the end of the request headers has passed by,
and on expiry it answers 408 and closes. `keepalive_timeout` is set to the same bound, so every
request on a connection (first or later) must have sent its headers within
`[server] read_timeout_seconds` of the connection opening or of the previous response; the body
then has its own deadline (bot.app.read_deadline).

It only watches bytes on their way to aiohttp's own protocol and never parses a request, so it
cannot change how a request is read: at worst (an unusual line ending) it disarms early.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any, Callable

from aiohttp import web

# An HTTP/1.x request's header block ends with an empty line; aiohttp also accepts bare LFs.
_HEADER_ENDS = (b"\r\n\r\n", b"\n\n")
_TIMEOUT_BODY = b"request headers did not arrive in time"
_TIMEOUT_ANSWER = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY))


class HeaderDeadline(asyncio.Protocol):
    """Wraps one connection's aiohttp protocol: closes the connection when the request headers
    have not all arrived within `timeout` seconds of connecting."""

    def __init__(self, inner: asyncio.Protocol, timeout: float, on_expire: Callable[[Any], None] | None = None) -> None:
        self.inner = inner
        self.timeout = timeout
        self.on_expire = on_expire
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes seen, so a header end split across reads is found

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        # Armed before aiohttp sees the connection: the guard's timer comes first at equal times.
        self._timer = asyncio.get_running_loop().call_later(self.timeout, self._expire)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            seen = self._tail + data
            if any(end in seen for end in _HEADER_ENDS):
                self._timer.cancel()
                self._timer = None
                self._tail = b""
            else:
                self._tail = seen[-3:]
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def _expire(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self.on_expire is not None:
            self.on_expire(transport.get_extra_info("peername"))
        # No request has started on this connection (aiohttp needs the header end to begin one),
        # so nothing else can be writing: answer as a server that timed the client out, and close.
        transport.write(_TIMEOUT_ANSWER)
        transport.close()


class _GuardedFactory:
    """The protocol factory a site hands to loop.create_server: aiohttp's, each protocol wrapped."""

    def __init__(self, inner: Callable[[], asyncio.Protocol], timeout: float,
                 on_expire: Callable[[Any], None] | None) -> None:
        self.inner, self.timeout, self.on_expire = inner, timeout, on_expire

    def __call__(self) -> HeaderDeadline:
        return HeaderDeadline(self.inner(), self.timeout, self.on_expire)


class GuardedRunner(web.AppRunner):
    """An AppRunner whose sites (web.TCPSite, web.SockSite: they take `runner.server` as their
    protocol factory) serve every connection under HeaderDeadline, with aiohttp's keep-alive
    timeout set to the same bound (see the module docstring)."""

    def __init__(self, app: web.Application, *, header_timeout: float,
                 on_expire: Callable[[Any], None] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", header_timeout)
        super().__init__(app, **kwargs)
        self.header_timeout = header_timeout
        self.on_expire = on_expire

    @property
    def server(self) -> Any:
        inner = super().server
        return None if inner is None else _GuardedFactory(inner, self.header_timeout, self.on_expire)


async def serve_until_signalled(app: web.Application, host: str, port: int, *, header_timeout: float,
                                on_expire: Callable[[Any], None] | None = None,
                                ready: Callable[[], None] | None = None) -> None:
    """`leadbot serve`: runs `app` on host:port until SIGINT or SIGTERM, then shuts down as
    web.run_app does (stop listening, finish requests in flight, run the app's cleanup)."""
    runner = GuardedRunner(app, header_timeout=header_timeout, on_expire=on_expire, access_log=None,
                           handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if ready is not None:
            ready()
        await stop.wait()
    finally:
        await runner.cleanup()
