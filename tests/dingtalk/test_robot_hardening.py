"""Robot messages cannot be forged from a captured signature, and their replies go only to
DingTalk, never hold the inbox processor behind a slow webhook (issue 18 #3)."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from bot.platforms.dingtalk.crypto import robot_sign


async def test_a_timestamp_and_sign_carry_one_message(leadbot):
    sb = leadbot.sandbox
    ts = str(int(sb.clock.now().timestamp() * 1000))
    first = sb.robot_body("u1", "我的线索", msg_id="msg-real")
    assert (await sb.post_robot(first, timestamp=ts)).status == 200
    forged = sb.robot_body("u1", "13800138000", msg_id="msg-forged")  # another body, the captured headers
    res = await sb.post_robot(forged, timestamp=ts)
    assert res.status == 401 and res.body["error"] == "replayed_sign"
    assert (await sb.post_robot(first, timestamp=ts)).status == 200  # DingTalk resending the same message
    await leadbot.drain()
    assert [e.message_id for e in leadbot.recorder.events] == ["msg-real"]


async def test_a_message_without_msg_id_is_refused(leadbot):
    sb = leadbot.sandbox
    body = sb.robot_body("u1", "帮助")
    del body["msgId"]
    assert (await sb.post_robot(body)).status == 400
    assert await leadbot.counts() == {}


async def test_a_session_webhook_off_dingtalk_is_never_posted_to(leadbot, aiohttp_server):
    hits: list[str] = []

    async def steal(request: web.Request) -> web.Response:
        hits.append(await request.text())
        return web.json_response({"errcode": 0})

    app = web.Application()
    app.router.add_post("/steal", steal)
    thief = await aiohttp_server(app)
    sb = leadbot.sandbox
    for webhook in (str(thief.make_url("/steal")), sb.base.replace("127.0.0.1", "localhost") + "/robot/sendBySession",
                    sb.base.replace("://", "://user@") + "/robot/sendBySession"):
        body = sb.robot_body("u1", "我的线索")
        body["sessionWebhook"] = webhook
        leadbot.recorder.events.clear()
        assert (await sb.post_robot(body)).status == 200
        await leadbot.drain()
        (cmd,) = leadbot.recorder.events
        assert await leadbot.dingtalk.reply(cmd, "您的线索：…") == "api"
    assert hits == []
    assert sb.robot_messages[-1]["user"] == "u1"


def test_own_webhook_hosts(leadbot):
    own = leadbot.dingtalk.is_own_webhook
    base = leadbot.sandbox.base
    assert own(base + "/robot/sendBySession?session=x")
    assert not own(base + ".evil.example/robot/sendBySession")
    assert not own("javascript:alert(1)") and not own("") and not own("http://[::1")


async def test_a_slow_session_webhook_does_not_hold_the_processor(leadbot):
    """The reply goes by the robot API once the webhook has had its short timeout; the event
    is done in one pass (the inbox does not retry it, holding everything queued behind it)."""
    sb = leadbot.sandbox
    sb.session_delay = 1.0
    leadbot.dingtalk.session_webhook_timeout = aiohttp.ClientTimeout(total=0.1)

    async def answer() -> None:
        await leadbot.dingtalk.reply(leadbot.recorder.events[-1], "可用命令")

    leadbot.recorder.delay = answer
    await sb.send_robot_text("u2", "帮助", conversation_type="1")
    await leadbot.drain()
    assert await leadbot.counts() == {"done": 1}
    assert sb.robot_messages[-1]["user"] == "u2" and sb.robot_messages[-1]["param"] == {"content": "可用命令"}


async def test_the_sign_header_alone_is_checked_before_the_body_is_read(leadbot):
    sb = leadbot.sandbox
    ts = str(int(sb.clock.now().timestamp() * 1000))
    resp = await leadbot.client.post("/callbacks/dingtalk/robot", data=b"{}",
                                     headers={"timestamp": ts, "sign": robot_sign(ts, "wrong")})
    assert resp.status == 403
