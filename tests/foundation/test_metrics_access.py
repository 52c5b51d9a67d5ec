"""/metrics: a configured token, or loopback only; labels bounded (issue 18 #7)."""

from __future__ import annotations

from aiohttp import web

from tests.conftest import AUTH, make_settings


def _from(address: str):
    @web.middleware
    async def remote_is(request, handler):
        return await handler(request.clone(remote=address))

    return remote_is


async def _app(aiohttp_client, engine, clock, address: str, **server):
    from bot.app import create_app

    app = create_app(make_settings(server=server), clock=clock, engine=engine, start_workers=False)
    app.middlewares.insert(0, _from(address))
    return await aiohttp_client(app)


async def test_without_a_token_only_loopback_reads_metrics(aiohttp_client, engine, clock) -> None:
    outside = await _app(aiohttp_client, engine, clock, "203.0.113.9")
    assert (await outside.get("/metrics")).status == 403
    local = await _app(aiohttp_client, engine, clock, "::1")
    assert (await local.get("/metrics")).status == 200


async def test_with_a_token_everyone_needs_it(aiohttp_client, engine, clock) -> None:
    cli = await _app(aiohttp_client, engine, clock, "127.0.0.1", metrics_token="scrape-token-123")
    assert (await cli.get("/metrics")).status == 401
    assert (await cli.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
    ok = await cli.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"})
    assert ok.status == 200 and "leadbot_http_requests_total" in await ok.text()


async def test_unknown_channels_and_methods_are_bucketed(client) -> None:
    for channel in ("13812345678", "baidu", "x" * 50, "Baidu"):
        await client.post("/api/v1/leads", json={"name": "m", "channel": channel}, headers=AUTH)
    text = await (await client.get("/metrics")).text()
    assert 'channel="other",outcome="created"} 2.0' in text
    assert 'channel="baidu",outcome="created"} 2.0' in text
    assert "13812345678" not in text and "x" * 50 not in text
