"""The database briefly unavailable: callbacks and intake answer 503 with Retry-After (never 500)
so platforms and sources retry, nothing half-stored, and the process recovers by itself.

Two ways of taking the store away:
- in-process, on SQLite and PostgreSQL alike: every statement fails with the driver's own
  OperationalError while the outage lasts (what a full disk, a lost file or a dropped connection
  look like from SQLAlchemy);
- for real, on PostgreSQL (a `leadbot serve` process): the database stops accepting connections
  and every backend of it is terminated; then it comes back.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlalchemy import event, text

from sandbox.dingtalk import DingTalkSandbox
from sandbox.wecom import SimulatedWeCom
from tests.conftest import AUTH, PG_URL, make_settings
from tests.faults.serve import WECOM, LeadbotProcess, fresh_database, scalar


class Outage:
    """Makes every statement on `engine` fail while `down` is set."""

    def __init__(self, engine) -> None:
        self.down = False
        dbapi = engine.dialect.loaded_dbapi

        def fail(conn, cursor, statement, parameters, context, executemany):
            if self.down:
                raise dbapi.OperationalError("injected: the database is unavailable")

        event.listen(engine.sync_engine, "before_cursor_execute", fail)


async def test_503_while_the_store_is_down_then_recovery(aiohttp_client, engine, clock) -> None:
    from bot.app import create_app

    wecom = SimulatedWeCom(clock=clock, **WECOM)
    dingtalk = DingTalkSandbox(clock=clock)
    settings = make_settings(wecom=dict(WECOM, api_base="http://127.0.0.1:9"),
                             dingtalk=dingtalk.dingtalk_settings(api_base="http://127.0.0.1:9",
                                                                 oapi_base="http://127.0.0.1:9"))
    cli = await aiohttp_client(create_app(settings, clock=clock, engine=engine, start_workers=False))
    wecom.callback_url = str(cli.make_url("/callbacks/wecom"))
    dingtalk.leadbot_url = str(cli.make_url("")).rstrip("/")
    outage = Outage(engine)

    async def inbox_rows() -> int:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT count(*) FROM inbox"))).scalar_one()

    plain = (f"<xml><ToUserName>{WECOM['corp_id']}</ToUserName><FromUserName>u1</FromUserName>"
             f"<CreateTime>{int(clock.now().timestamp())}</CreateTime><MsgType>text</MsgType>"
             "<Content>hi</Content><MsgId>9100001</MsgId></xml>")
    lead = {"name": "停电客户", "phone": "13900000001"}

    outage.down = True
    first = await wecom.post_callback(plain)
    assert first.status == 503, first
    dt = await dingtalk.send_event("user_add_org", {"UserId": ["u9"]}, event_id="outage-1")
    assert dt.status == 503
    robot = await dingtalk.send_robot_text("u1", "状态", msg_id="outage-robot-1")
    assert robot.status == 503
    resp = await cli.post("/api/v1/leads", json=lead, headers={**AUTH, "Idempotency-Key": "outage-lead"})
    assert resp.status == 503 and resp.headers.get("Retry-After")
    outage.down = False

    # Nothing half-stored, and the platforms' retries now go through, once.
    assert await inbox_rows() == 0
    assert (await wecom.resend(first)).status == 200
    assert (await wecom.resend(first)).status == 200
    assert (await dingtalk.send_event("user_add_org", {"UserId": ["u9"]}, event_id="outage-1")).status == 200
    assert (await dingtalk.send_robot_text("u1", "状态", msg_id="outage-robot-1")).status == 200
    assert await inbox_rows() == 3
    again = await cli.post("/api/v1/leads", json=lead, headers={**AUTH, "Idempotency-Key": "outage-lead"})
    assert again.status == 201
    replay = await cli.post("/api/v1/leads", json=lead, headers={**AUTH, "Idempotency-Key": "outage-lead"})
    assert replay.status == 200 and (await replay.json())["id"] == (await again.json())["id"]
    await wecom.stop()
    await dingtalk.stop()


async def _set_connections(db_url: str, allow: bool) -> None:
    from store.db import create_engine
    from sqlalchemy.engine import make_url

    name = make_url(db_url).database
    admin = create_engine(PG_URL)
    try:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if allow else "false"}'))
            if not allow:
                await conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
    finally:
        await admin.dispose()


@pytest.mark.skipif(not PG_URL, reason="a real outage needs PostgreSQL (LEADBOT_TEST_DATABASE_URL)")
async def test_postgres_outage_503_then_self_recovery(tmp_path: Path) -> None:
    sim = SimulatedWeCom(**WECOM)

    def callback(i: int) -> tuple[str, bytes]:
        plain = (f"<xml><ToUserName>{WECOM['corp_id']}</ToUserName><FromUserName>u1</FromUserName>"
                 f"<CreateTime>{int(sim.now().timestamp())}</CreateTime><MsgType>text</MsgType>"
                 f"<Content>hi</Content><MsgId>{9200000 + i}</MsgId></xml>")
        query, body = sim.encrypt_callback(plain)
        return urlencode(query), body

    async with fresh_database(tmp_path) as db:
        server = await LeadbotProcess(tmp_path, db).start()
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
                async def post(i: int) -> int:
                    q, body = callback(i)
                    async with http.post(f"{server.base}/callbacks/wecom?{q}", data=body) as r:
                        return r.status

                assert await post(0) == 200
                await _set_connections(db, allow=False)
                try:
                    statuses = [await post(i) for i in range(1, 6)]
                    lead = await http.post(server.base + "/api/v1/leads", json={"name": "x"}, headers=AUTH)
                    lead_status = lead.status
                    async with http.get(server.base + "/healthz") as r:
                        alive = r.status
                finally:
                    await _set_connections(db, allow=True)
                assert statuses == [503] * 5, statuses
                assert lead_status == 503
                assert alive == 200  # the process itself is fine: liveness must not restart it
                # Back by itself: no restart, the next tries succeed within a few seconds.
                ok = False
                for attempt in range(50):
                    if await post(1) == 200:
                        ok = True
                        break
                    await asyncio.sleep(0.2)
                assert ok, "leadbot did not recover after the database came back"
                assert all([await post(i) == 200 for i in range(2, 6)])
            assert server.proc.poll() is None
            assert await scalar(db, "SELECT count(*) FROM inbox") == 6
        finally:
            server.stop()
