"""App-robot messages over HTTP: signature, window, TextCommand, dedupe, replies."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.events import TextCommand, UnknownEvent
from bot.platforms.dingtalk.crypto import robot_sign


def test_robot_sign_reference_example():
    assert robot_sign("1577262236757", "this is secret") == "hmPWwU+7lVdm3ZZz0r9tSfx0L4Q26jWOZr9+Gs6EZQM="


async def test_reference_example_through_the_route(make_leadbot, clock):
    sent_at = datetime.fromtimestamp(1577262236757 / 1000, tz=timezone.utc)
    sign = "hmPWwU+7lVdm3ZZz0r9tSfx0L4Q26jWOZr9+Gs6EZQM="
    cases = [(timedelta(minutes=2), 300, 200),  # inside both windows
             (timedelta(minutes=30), 300, 200),  # a robot message keeps DingTalk's hour (D12)
             (timedelta(minutes=30), 7200, 200),  # a wide replay window: DingTalk's hour applies
             (timedelta(minutes=61), 7200, 403)]  # and not beyond it
    for offset, window, status in cases:
        clock.set(sent_at + offset)
        lb = await make_leadbot(dingtalk={"app_secret": "this is secret"}, server={"replay_window_seconds": window})
        # One message (one msgId): a pair of timestamp and sign carries one message only.
        body = lb.sandbox.robot_body("u1", "帮助", msg_id="msg-reference")
        res = await lb.sandbox.post_robot(body, timestamp="1577262236757", sign=sign)
        assert res.status == status, (offset, window, res.body)


async def test_text_becomes_a_text_command(leadbot):
    sb = leadbot.sandbox
    res = await sb.send_robot_text("u1", "我的线索", msg_id="msg-1", conversation_type="2", conversation_id="cidGroup1")
    assert res.status == 200
    await leadbot.drain()
    (cmd,) = leadbot.recorder.events
    assert isinstance(cmd, TextCommand)
    assert (cmd.platform, cmd.sender_id, cmd.text, cmd.message_id) == ("dingtalk", "u1", "我的线索", "msg-1")
    assert cmd.is_group and cmd.conversation_id == "cidGroup1"
    assert cmd.reply_webhook.startswith(sb.base + "/robot/sendBySession?session=")
    assert cmd.reply_webhook_expires_at == sb.clock.now() + timedelta(minutes=90)
    assert cmd.occurred_at == sb.clock.now()


async def test_same_msg_id_twice_is_one_command(leadbot):
    sb = leadbot.sandbox
    body = sb.robot_body("u2", "张三", msg_id="msg-dup")
    assert (await sb.post_robot(body)).status == 200
    assert (await sb.post_robot(body)).status == 200
    await leadbot.drain()
    assert len(leadbot.recorder.events) == 1
    assert await leadbot.counts() == {"done": 1}


async def test_non_text_messages_are_unknown_events(leadbot):
    sb = leadbot.sandbox
    body = sb.robot_body("u1", "x")
    body.update(msgtype="picture", content={"downloadCode": "dc"})
    del body["text"]
    assert (await sb.post_robot(body)).status == 200
    await leadbot.drain()
    (event,) = leadbot.recorder.events
    assert isinstance(event, UnknownEvent) and event.kind == "robot_picture"


@pytest.mark.parametrize("case", ["wrong_secret", "no_sign", "stale", "future", "garbage_ts"])
async def test_bad_robot_callbacks_are_refused(leadbot, case):
    sb = leadbot.sandbox
    body = sb.robot_body("u1", "帮助")
    now_ms = int(sb.clock.now().timestamp() * 1000)
    kw = {"wrong_secret": {"secret": "not the secret"}, "no_sign": {"sign": ""},
          "stale": {"timestamp": str(now_ms - 2 * 3600 * 1000)}, "future": {"timestamp": str(now_ms + 3601 * 1000)},
          "garbage_ts": {"timestamp": "12ab"}}[case]
    res = await sb.post_robot(body, **kw)
    assert 400 <= res.status < 500
    assert await leadbot.counts() == {}


@pytest.mark.parametrize("raw", [b"{", b"[1]", b""])
async def test_malformed_robot_body_is_a_4xx(leadbot, raw):
    sb = leadbot.sandbox
    ts = str(int(sb.clock.now().timestamp() * 1000))
    resp = await leadbot.client.post("/callbacks/dingtalk/robot", data=raw,
                                     headers={"timestamp": ts, "sign": robot_sign(ts, sb.app_secret)})
    assert resp.status == 400
    assert await leadbot.counts() == {}


async def test_reply_through_session_webhook_then_robot_api(leadbot):
    sb = leadbot.sandbox
    await sb.send_robot_text("u1", "帮助", conversation_type="1")
    await sb.send_robot_text("u2", "帮助", conversation_type="2", conversation_id="cidSales")
    await leadbot.drain()
    dm, group = leadbot.recorder.events
    assert await leadbot.dingtalk.reply(dm, "可用命令：我的线索") == "session"
    assert sb.session_replies[-1]["msg"]["text"]["content"] == "可用命令：我的线索"

    sb.clock.advance(timedelta(minutes=95))  # the sessionWebhook has expired
    assert await leadbot.dingtalk.reply(dm, text="稍后的回复") == "api"
    assert sb.robot_messages[-1]["user"] == "u1" and sb.robot_messages[-1]["param"] == {"content": "稍后的回复"}
    assert await leadbot.dingtalk.reply(group, markdown=("线索", "**3** 条")) == "api"
    assert sb.group_messages[-1]["conversation"] == "cidSales"
    assert sb.group_messages[-1]["msgKey"] == "sampleMarkdown"


async def test_reply_falls_back_when_the_session_is_refused(leadbot):
    sb = leadbot.sandbox
    await sb.send_robot_text("u3", "帮助")
    await leadbot.drain()
    (cmd,) = leadbot.recorder.events
    sb.sessions.clear()  # DingTalk forgot the session early
    assert await leadbot.dingtalk.reply(cmd, "hi") == "api"
    assert sb.robot_messages[-1]["user"] == "u3"
