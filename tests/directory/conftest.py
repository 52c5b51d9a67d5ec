"""Directory-sync fixtures: leadbot wired to a simulated WeCom and a simulated DingTalk whose
directories are seeded with departments and members (tests change them between syncs)."""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from bot.context import CTX
from sandbox.dingtalk import DingTalkSandbox
from sandbox.wecom import SimulatedWeCom
from tests.e2e.conftest import AES_KEY, AGENT_ID, CORP_ID, SECRET, TOKEN, e2e_settings


def seed_wecom(sb: SimulatedWeCom) -> None:
    sb.add_department(1, "示例科技")
    sb.add_department(2, "华东销售", parentid=1, leaders=["zhou"])
    sb.add_department(3, "华南销售", parentid=1)
    sb.add_member("zhou", "周经理", [2])
    sb.add_member("zhangsan", "张三", [2], mobile="+86 13800000001")
    sb.add_member("lisi", "李四", [2])
    sb.add_member("wu", "吴经理", [3], leader_in=[3])  # leader through is_leader_in_dept only


def seed_dingtalk(sb: DingTalkSandbox) -> None:
    sb.add_department(20, "华东销售")
    sb.add_department(30, "华南销售")
    sb.add_member("dt_zhang", "张三", [20], mobile="13800000001")  # WeCom's 张三: same mobile
    sb.add_member("dt_wu", "吴经理", [30], leader_in=[30])  # WeCom's 吴经理: same name, same team
    sb.add_member("dt_zhao", "赵磊", [30])  # DingTalk only


@pytest.fixture
async def wecom(clock) -> AsyncIterator[SimulatedWeCom]:
    sb = SimulatedWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID, token=TOKEN,
                        encoding_aes_key=AES_KEY, clock=clock)
    seed_wecom(sb)
    await sb.start()
    yield sb
    await sb.stop()


@pytest.fixture
async def dingtalk(clock) -> AsyncIterator[DingTalkSandbox]:
    sb = DingTalkSandbox(clock=clock)
    seed_dingtalk(sb)
    await sb.start()
    yield sb
    await sb.stop()


@pytest.fixture
async def leadbot(aiohttp_client, engine, clock, wecom, dingtalk):
    from bot.app import create_app

    settings = e2e_settings(wecom.base_url, dingtalk=dingtalk.dingtalk_settings(card_template_id=""))
    app = create_app(settings, clock=clock, engine=engine, start_workers=False)
    cli = await aiohttp_client(app)
    wecom.callback_url = str(cli.make_url("/callbacks/wecom"))
    dingtalk.leadbot_url = str(cli.make_url("")).rstrip("/")
    return cli


@pytest.fixture
def ctx(leadbot) -> Any:
    return leadbot.app[CTX]


async def reps_by_id(store) -> dict[str, Any]:
    return {r.external_id: r for r in await store.list_reps()}
