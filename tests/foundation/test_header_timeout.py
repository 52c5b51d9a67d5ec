"""A client that trickles its request headers (slowloris) is cut off after [server]
read_timeout_seconds (issue 18 #8), over a real socket on loopback: in-process through
bot.api.serving's runner, and through a real `leadbot serve`."""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator

import pytest
from aiohttp import web

from bot.api.serving import GuardedRunner
from tests.conftest import INTAKE_TOKEN, make_settings
from tests.faults.serve import LeadbotProcess, fresh_database

BOUND = 0.6


async def _trickle_until_closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                first: bytes, limit: float = 10.0) -> tuple[float, bytes]:
    """Sends `first`, then one header byte every 50 ms (never the blank line that ends the
    headers) until the server closes; returns (seconds until closed, what the server sent)."""
    started = time.monotonic()
    writer.write(first)
    got = b""
    while time.monotonic() - started < limit:
        try:
            chunk = await asyncio.wait_for(reader.read(4096), 0.05)
        except asyncio.TimeoutError:
            try:
                writer.write(b"X")
                await writer.drain()
            except (ConnectionError, OSError):
                break
            continue
        except (ConnectionError, OSError):
            break
        if not chunk:
            break
        got += chunk
    elapsed = time.monotonic() - started
    writer.close()
    return elapsed, got


async def _response(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    return head + await asyncio.wait_for(reader.readexactly(length), 5)


@pytest.fixture
async def served(engine, clock) -> AsyncIterator[tuple[str, int]]:
    from bot.app import create_app

    app = create_app(make_settings(server={"read_timeout_seconds": BOUND}), clock=clock, engine=engine,
                     start_workers=False)
    runner = GuardedRunner(app, header_timeout=BOUND, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield host, port
    await runner.cleanup()


async def test_trickled_headers_are_cut_off_with_408(served) -> None:
    reader, writer = await asyncio.open_connection(*served)
    elapsed, got = await _trickle_until_closed(reader, writer, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    assert got.startswith(b"HTTP/1.1 408"), got
    assert BOUND * 0.9 <= elapsed < BOUND + 1.0, elapsed


async def test_a_silent_connection_is_closed_too(served) -> None:
    reader, writer = await asyncio.open_connection(*served)
    started = time.monotonic()
    got = await asyncio.wait_for(reader.read(), 5)
    assert time.monotonic() - started < BOUND + 1.0
    assert got == b"" or got.startswith(b"HTTP/1.1 408")
    writer.close()


async def test_ordinary_requests_and_keep_alive_still_work(served) -> None:
    reader, writer = await asyncio.open_connection(*served)
    for _ in range(3):  # three requests on one connection, each well inside the bound
        # Sent in two pieces, the header end split between them.
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"\n")
        assert (await _response(reader)).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_the_next_request_on_a_kept_alive_connection_is_bounded_too(served) -> None:
    reader, writer = await asyncio.open_connection(*served)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await _response(reader)).startswith(b"HTTP/1.1 200")
    elapsed, got = await _trickle_until_closed(reader, writer, b"GET /healthz HTTP/1.1\r\nX-Slow: ")
    assert b"200" not in got
    assert elapsed < BOUND + 1.5, elapsed


async def test_leadbot_serve_cuts_off_trickled_headers(tmp_path) -> None:
    async with fresh_database(tmp_path) as db_url:
        proc = LeadbotProcess(tmp_path, db_url, extra={"server": {"read_timeout_seconds": 1}})
        await proc.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", proc.port)
            elapsed, got = await _trickle_until_closed(
                reader, writer, b"POST /api/v1/leads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
            assert got.startswith(b"HTTP/1.1 408") and 0.9 <= elapsed < 2.5, (elapsed, got)
            # An ordinary client is served as before.
            reader, writer = await asyncio.open_connection("127.0.0.1", proc.port)
            body = b'{"name": "\xe7\x8e\x8b\xe4\xbc\x9f"}'
            writer.write(b"POST /api/v1/leads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Authorization: Bearer " + INTAKE_TOKEN.encode() +
                         b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            assert (await _response(reader)).startswith(b"HTTP/1.1 201")
            writer.close()
        finally:
            proc.stop()
        assert proc.proc is not None and proc.proc.returncode == 0  # SIGTERM: a clean shutdown
        assert "http.header_timeout" in proc.log_path.read_text(errors="replace")
