"""Fuzzing fixtures: the whole app (WeCom, DingTalk and intake all configured, workers off so row
counts only move with requests) behind a test client, the simulated platforms for real crypto,
and the checks every example must pass."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, AsyncIterator

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import text

from sandbox.dingtalk import DingTalkSandbox
from sandbox.wecom import SimulatedWeCom
from tests.conftest import make_settings

# Small caps, so oversize bodies are cheap to send; the code path is the same at 1 MiB.
MAX_BODY = 4096
TABLES = ("inbox", "leads", "customers", "identities", "outbox", "cards")
EXAMPLES = int(os.environ.get("LEADBOT_FUZZ_EXAMPLES", "40"))

# Examples share one app and one database (built once per test, not per example); the server
# must stay healthy across all of them, which is part of the point.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=bool(os.environ.get("CI")),
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])

WECOM = dict(corp_id="wwfuzzcorp00000001", secret="fuzz-secret", agent_id=1000002, token="FuzzToken",
             encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")


@dataclass
class Target:
    client: Any
    engine: Any
    clock: Any
    wecom: SimulatedWeCom
    dingtalk: DingTalkSandbox

    async def counts(self) -> dict[str, int]:
        out = {}
        async with self.engine.connect() as conn:
            for table in TABLES:
                out[table] = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
        return out

    async def send(self, method: str, path: str, *, expect_refused: bool | None = None, **kw: Any) -> int:
        """Sends one request and checks the invariants: no 500, no 503 while the store is up (a
        poison input that would be retried forever), and no row stored when refused. Returns
        the status."""
        before = await self.counts()
        async with self.client.request(method, path, **kw) as resp:
            await resp.read()
            status = resp.status
        assert status < 500, f"{method} {path} answered {status}"
        after = await self.counts()
        if status >= 400:
            assert after == before, f"refused ({status}) but rows changed: {before} -> {after}"
        if expect_refused is True:
            assert status >= 400, f"{method} {path} should have been refused, got {status}"
        return status


@pytest.fixture
async def target(aiohttp_client, engine, clock) -> AsyncIterator[Target]:
    from bot.app import create_app

    wecom = SimulatedWeCom(clock=clock, users=("user0", "user1"), **WECOM)
    await wecom.start()
    dingtalk = DingTalkSandbox(clock=clock, users=("u1", "u2"))
    await dingtalk.start()
    cfg = make_settings(
        wecom=dict(WECOM, api_base=wecom.base_url),
        dingtalk=dingtalk.dingtalk_settings(),
        server={"max_body_bytes": MAX_BODY, "replay_window_seconds": 300, "public_url": "http://leadbot.test"},
        intake={"max_body_bytes": MAX_BODY})
    app = create_app(cfg, clock=clock, engine=engine, start_workers=False)
    cli = await aiohttp_client(app)
    wecom.callback_url = str(cli.make_url("/callbacks/wecom"))
    dingtalk.leadbot_url = str(cli.make_url("")).rstrip("/")
    yield Target(cli, engine, clock, wecom, dingtalk)
    await wecom.stop()
    await dingtalk.stop()
