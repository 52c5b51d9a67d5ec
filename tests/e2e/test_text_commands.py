"""Text commands as reps send them: to the WeCom app, or to the DingTalk robot."""

from __future__ import annotations

import pytest

from sandbox.dingtalk import DingTalkSandbox
from tests.conftest import AUTH
from tests.e2e.conftest import deliver, e2e_settings, start_leadbot

REPS = [{"id": "r1", "name": "张三", "wecom_userid": "zhangsan", "dingtalk_userid": "dt_zhang", "team": "华东",
         "role": "rep"}]


def _last_text(wecom, user: str) -> str:
    return [m for m in wecom.messages_for(user) if m["msgtype"] == "text"][-1]["content"]["content"]


async def test_wecom_commands(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom)
    await cli.post("/api/v1/leads", json={"name": "王小明", "phone": "13812345678", "company": "华为"}, headers=AUTH)
    await deliver(cli)
    await wecom.send_text("zhangsan", "帮助")
    await deliver(cli)
    assert "我的线索" in _last_text(wecom, "zhangsan")
    await wecom.send_text("zhangsan", "我的线索")
    await deliver(cli)
    mine = _last_text(wecom, "zhangsan")
    assert "王小明" in mine and "138****5678" in mine and "13812345678" not in mine
    await wecom.send_text("zhangsan", "5678")
    await deliver(cli)
    found = _last_text(wecom, "zhangsan")
    # Lead numbers say they are lead numbers: customers have numbers too (客户 #N on cards).
    assert "找到 1 条线索" in found and "线索 #1 王小明" in found
    await wecom.send_text("zhangsan", "为什么是我")
    await deliver(cli)
    assert "张三" in _last_text(wecom, "zhangsan")
    await wecom.send_text("zhangsan", "文本模式")
    await deliver(cli)
    assert (await store.get_rep(1)).delivery == "text"


@pytest.fixture
async def dingtalk(clock):
    sb = DingTalkSandbox(clock=clock, users=("dt_zhang",))
    await sb.start()
    yield sb
    await sb.stop()


async def test_dingtalk_robot_command_answers_in_the_conversation(aiohttp_client, engine, clock, store, wecom,
                                                                   dingtalk) -> None:
    await store.import_reps(REPS)
    from bot.app import create_app

    app = create_app(e2e_settings(wecom.base_url, dingtalk=dingtalk.dingtalk_settings()), clock=clock,
                     engine=engine, start_workers=False)
    cli = await aiohttp_client(app)
    dingtalk.leadbot_url = str(cli.make_url("")).rstrip("/")
    result = await dingtalk.send_robot_text("dt_zhang", " 帮助")
    assert result.status == 200
    await deliver(cli)
    assert dingtalk.session_replies and "我的线索" in str(dingtalk.session_replies[-1])
