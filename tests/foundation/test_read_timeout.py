"""A client that trickles its body gets 408 after [server] read_timeout_seconds (issue 18 #8)."""

from __future__ import annotations

import asyncio

from tests.conftest import INTAKE_TOKEN, make_settings


async def test_a_body_that_does_not_arrive_in_time_is_408(aiohttp_server, engine, clock) -> None:
    from bot.app import create_app

    app = create_app(make_settings(server={"read_timeout_seconds": 0.2}), clock=clock, engine=engine,
                     start_workers=False)
    server = await aiohttp_server(app)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(("POST /api/v1/leads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Authorization: Bearer {INTAKE_TOKEN}\r\nContent-Length: 100\r\n\r\n" + '{"name": "').encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408"), head
    async with engine.connect() as conn:
        from sqlalchemy import text

        assert (await conn.execute(text("SELECT count(*) FROM leads"))).scalar_one() == 0
