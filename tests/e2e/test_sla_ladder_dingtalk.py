"""The first-touch ladder on DingTalk: cards and work notices to the rep and the manager, the
managers' custom group robot (signed URL), all driven by the injected clock."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.context import CTX
from sandbox.dingtalk import DingTalkSandbox
from tests.conftest import AUTH, make_settings

REPS = [{"id": "m1", "name": "周经理", "dingtalk_userid": "dt_zhou", "team": "华北", "role": "manager"},
        {"id": "r1", "name": "陈静", "dingtalk_userid": "dt_chen", "team": "华北", "role": "rep", "manager": "m1"}]
SLA = {"first_touch_remind": "2m", "first_touch_escalate": "4m", "first_touch_reassign": "30m", "pool_return": "2h"}


@pytest.fixture
async def dingtalk(clock):
    sb = DingTalkSandbox(clock=clock, users=("dt_zhou", "dt_chen"))
    await sb.start()
    yield sb
    await sb.stop()


async def _tick(cli, clock, minutes: float) -> None:
    clock.advance(timedelta(minutes=minutes))
    ctx = cli.app[CTX]
    await ctx.services.scheduler.sweep_once()
    await ctx.services.processor.drain()
    await ctx.services.delivery_worker.drain()


def _seen_by(sb: DingTalkSandbox, user: str) -> str:
    cards = [json.dumps(c.view(user), ensure_ascii=False) for c in sb.cards.values()
             if user in c.private_data or any(user in s for s in c.spaces)]
    notices = [json.dumps(n, ensure_ascii=False, default=str) for n in sb.notices_for(user)]
    return "\n".join(cards + notices)


async def test_ladder_on_dingtalk(aiohttp_client, engine, clock, store, dingtalk) -> None:
    await store.import_reps(REPS)
    webhook, secret = dingtalk.add_custom_robot()
    from bot.app import create_app

    settings = make_settings(dingtalk=dingtalk.dingtalk_settings(manager_robot_webhook=webhook,
                                                                 manager_robot_secret=secret), sla=SLA)
    app = create_app(settings, clock=clock, engine=engine, start_workers=False)
    cli = await aiohttp_client(app)
    dingtalk.leadbot_url = str(cli.make_url("")).rstrip("/")
    lead = await (await cli.post("/api/v1/leads", json={"name": "马丽", "phone": "13655556666"}, headers=AUTH)).json()
    await _tick(cli, clock, 0)
    assert "马丽" in _seen_by(dingtalk, "dt_chen")
    await _tick(cli, clock, 2.1)
    assert "还在等你跟进" in _seen_by(dingtalk, "dt_chen")
    await _tick(cli, clock, 2.0)
    assert "超时未跟进" in _seen_by(dingtalk, "dt_zhou")
    group = json.dumps(dingtalk.group_messages, ensure_ascii=False, default=str)
    assert "马丽" in group and "13655556666" not in group
    assert (await store.get_lead(lead["id"])).status == "assigned"
