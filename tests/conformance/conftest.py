"""Fixtures for the platform-conformance suite (reference/conformance.md): leadbot over HTTP
against the simulated platforms, workers driven by the test, time on the manual clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.context import CTX
from sandbox.dingtalk import DingTalkSandbox
from tests.conftest import make_settings
from tests.e2e.conftest import wecom  # noqa: F401  (the simulated WeCom fixture)

DT_REPS = [{"id": "m1", "name": "周经理", "dingtalk_userid": "dt_zhou", "team": "华北", "role": "manager"},
           {"id": "r1", "name": "陈静", "dingtalk_userid": "dt_chen", "team": "华北",
            "role": "rep", "manager": "m1"}]
SLA = {"first_touch_remind": "2m", "first_touch_escalate": "4m", "first_touch_reassign": "30m", "pool_return": "2h"}


@pytest.fixture
async def dingtalk(clock):
    sb = DingTalkSandbox(clock=clock, users=("dt_zhou", "dt_chen"))
    await sb.start()
    yield sb
    await sb.stop()


async def no_sleep(_: float) -> None:
    return None


async def start_dingtalk_leadbot(aiohttp_client, engine, clock, sandbox: DingTalkSandbox, **sections: Any):
    from bot.app import create_app

    dingtalk = sandbox.dingtalk_settings(**sections.pop("dingtalk", {}))
    settings = make_settings(dingtalk=dingtalk, sla=SLA, **sections)
    app = create_app(settings, clock=clock, engine=engine, start_workers=False)
    cli = await aiohttp_client(app)
    app[CTX].services.dingtalk_client.sleep = no_sleep
    sandbox.leadbot_url = str(cli.make_url("")).rstrip("/")
    return cli


async def tick(cli, clock, seconds: float = 0) -> None:
    clock.advance(timedelta(seconds=seconds))
    ctx = cli.app[CTX]
    await ctx.services.scheduler.sweep_once()
    await ctx.services.processor.drain()
    await ctx.services.delivery_worker.drain()
