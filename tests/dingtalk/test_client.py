"""The outbound client against the simulated DingTalk: tokens, throttling, work notices, robot
messages and custom robots."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from bot.platforms.dingtalk import messages as m
from bot.platforms.dingtalk.client import DingTalkClient
from bot.platforms.dingtalk.errors import (CredentialsError, PermanentError, ThrottleError, TokenError,
                                           TransientError, classify_oapi, classify_text, classify_v1)
from store.kv import KeyValueStore
from leadbot.settings import DingTalkSettings


def settings_for(sb, **kw) -> DingTalkSettings:
    values = sb.dingtalk_settings(**kw)
    return DingTalkSettings(**values)


class Sleeps(list):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
async def client(sandbox, clock):
    c = DingTalkClient(settings_for(sandbox), clock=clock, sleep=Sleeps())
    yield c
    await c.close()


async def test_tokens_are_cached_until_expiry(client, sandbox, clock):
    first = await client.access_token()
    assert await client.access_token() == first
    assert client.token_fetches["v1"] == 1
    token_call = sandbox.calls_to("/v1.0/oauth2/accessToken")[0].body
    assert token_call == {"appKey": sandbox.app_key, "appSecret": sandbox.app_secret}
    oapi = await client.oapi_token()
    assert sandbox.calls_to("/gettoken")[0].query == {"appkey": sandbox.app_key, "appsecret": sandbox.app_secret}
    clock.advance(timedelta(seconds=7200 - 299))  # within the refresh margin
    await client.access_token()
    await client.oapi_token()
    assert client.token_fetches == {"v1": 2, "oapi": 2}
    assert oapi


async def test_single_flight(client, sandbox):
    tokens = await asyncio.gather(*(client.access_token() for _ in range(10)))
    assert len(set(tokens)) == 1 and client.token_fetches["v1"] == 1


async def test_expired_token_is_refreshed_and_the_call_retried(client, sandbox):
    await client.send_work_text("u1", "第一条", ref="a")
    await client.robot_batch_send(["u1"], *m.sample_text("hi"))
    sandbox.expire_tokens()  # DingTalk no longer accepts them, the client does not know yet
    await client.send_work_text("u1", "第二条", ref="b")
    await client.robot_batch_send(["u2"], *m.sample_text("hi"))
    assert client.token_fetches == {"v1": 2, "oapi": 2}
    assert [n["user"] for n in sandbox.work_notices] == ["u1", "u1"]
    oapi_answers = [c.response for c in sandbox.calls_to("/topapi/message/corpconversation/asyncsend_v2")]
    assert oapi_answers[1]["errcode"] == 88 and oapi_answers[1]["sub_code"] == "40014"


async def test_tokens_are_shared_through_the_kv_table(engine, sandbox, clock):
    store = KeyValueStore(engine, clock)
    a = DingTalkClient(settings_for(sandbox), clock=clock, token_store=store, sleep=Sleeps())
    b = DingTalkClient(settings_for(sandbox), clock=clock, token_store=store, sleep=Sleeps())
    try:
        assert await a.access_token() == await b.access_token()
        assert a.token_fetches["v1"] + b.token_fetches["v1"] == 1
        sandbox.expire_tokens()
        await b.robot_batch_send(["u1"], *m.sample_text("x"))  # b refreshes, a picks it up
        assert await a.access_token(force=False) != ""
        a._tokens["v1"].value = ""  # a forgets its in-memory copy (another process)
        assert await a.access_token() == await b.access_token()
        assert a.token_fetches["v1"] + b.token_fetches["v1"] == 2
    finally:
        await a.close()
        await b.close()


async def test_bad_credentials_are_permanent(sandbox, clock):
    c = DingTalkClient(settings_for(sandbox, app_secret="wrong"), clock=clock, sleep=Sleeps())
    try:
        with pytest.raises(CredentialsError):
            await c.access_token()
        with pytest.raises(CredentialsError):
            await c.oapi_token()
    finally:
        await c.close()


async def test_throttle_is_retried_with_backoff(client, sandbox):
    for _ in range(2):
        sandbox.fail_next.append(("/v1.0/robot/oToMessages/batchSend", 403,
                                  {"code": "Forbidden.AccessDenied.QpsLimitForApi", "message": "qps"}))
    result = await client.robot_batch_send(["u1"], *m.sample_text("hi"))
    assert result.process_query_key
    assert len(client.sleep) == 2 and client.sleep[1] > client.sleep[0] * 1.2
    for _ in range(5):
        sandbox.fail_next.append(("/topapi/message/corpconversation/asyncsend_v2", 200,
                                  {"errcode": 90018, "errmsg": "调用频率超过限制"}))
    with pytest.raises(ThrottleError) as e:
        await client.send_work_text("u1", "x")
    assert e.value.retryable and e.value.code == 90018
    assert len(client.sleep) == 2 + client.throttle_retries


async def test_permanent_errors_are_not_retried(client, sandbox):
    with pytest.raises(PermanentError) as e:
        await client.robot_batch_send(["u1"], "sampleNope", {"content": "x"})
    assert e.value.status == 400 and not e.value.retryable
    assert client.sleep == []


def test_error_classification():
    assert isinstance(classify_oapi({"errcode": 88, "sub_code": "40014"}), TokenError)
    assert isinstance(classify_oapi({"errcode": 42001}), TokenError)
    assert isinstance(classify_oapi({"errcode": 90002}), ThrottleError)
    assert isinstance(classify_oapi({"errcode": 143103}), ThrottleError)
    assert isinstance(classify_oapi({"errcode": 130101}), ThrottleError)
    assert isinstance(classify_oapi({"errcode": -1}), TransientError)
    assert isinstance(classify_oapi({"errcode": 143106}), PermanentError)
    assert isinstance(classify_oapi({"errcode": 40096}), CredentialsError)
    assert classify_oapi({"errcode": 0}) is None
    assert isinstance(classify_v1(401, {"code": "InvalidAuthentication"}), TokenError)
    assert isinstance(classify_v1(400, {"code": "send.too.fast"}), ThrottleError)
    assert isinstance(classify_v1(429, {}), ThrottleError)
    assert isinstance(classify_v1(503, {}), TransientError)
    assert isinstance(classify_v1(403, {"code": "Forbidden.AccessDenied.AccessTokenPermissionDenied"}), PermanentError)
    assert classify_v1(200, {}) is None
    assert isinstance(classify_text(403, '<html>{"punish":"deny"}</html>'), ThrottleError)


async def test_work_notices_same_content_once_a_day(client, sandbox, clock):
    r1 = await client.send_work_markdown(["u1"], "新线索", "**王小明** 上海")
    await client.send_work_markdown(["u1"], "新线索", "**王小明** 上海")  # DingTalk drops this one
    assert r1.task_id and len(sandbox.notices_for("u1")) == 1
    result = await client.get_work_notice_result(sandbox.work_tasks and max(sandbox.work_tasks))
    assert result["forbidden_list"] == [{"code": "143106", "count": 1, "userid": "u1"}]
    # leadbot varies what must vary: the ref of each message makes two reminders distinct
    await client.send_work_markdown(["u1"], "新线索", "**王小明** 上海", ref=m.short_ref("outbox:1"))
    await client.send_work_markdown(["u1"], "新线索", "**王小明** 上海", ref=m.short_ref("outbox:2"))
    assert len(sandbox.notices_for("u1")) == 3
    clock.advance(timedelta(days=1))
    await client.send_work_markdown(["u1"], "新线索", "**王小明** 上海")
    assert len(sandbox.notices_for("u1")) == 4


async def test_work_notice_daily_cap_and_unknown_users(client, sandbox):
    sandbox.work_notice_daily_cap = 3
    for i in range(4):
        await client.send_work_text(["u2", "ghost"], f"提醒 {i}")
    assert len(sandbox.notices_for("u2")) == 3
    last = sandbox.work_tasks[max(sandbox.work_tasks)]
    assert last["forbidden_list"][0]["code"] == "143105" and last["invalid_user_id_list"] == ["ghost"]


async def test_work_notice_shapes(client, sandbox):
    await client.send_work_action_card("u3", "线索待认领" * 10, "客户：**王**",
                                       buttons=[("认领", "https://x/a/1"), ("转交", "https://x/a/2")], ref="消息编号 r1")
    await client.send_work_action_card("u3", "单按钮", "正文", single=("打开详情页面" * 5, "https://x/a/3"))
    await client.send_work_text("u3", "长" * 3000)
    sent = [n["msg"] for n in sandbox.notices_for("u3")]
    card = sent[0]["action_card"]
    assert len(card["title"]) <= 64 and card["btn_orientation"] == "0"
    assert card["btn_json_list"] == [{"title": "认领", "action_url": "https://x/a/1"},
                                     {"title": "转交", "action_url": "https://x/a/2"}]
    assert card["markdown"].endswith("\n\n###### 消息编号 r1")  # the ref as worded by the caller
    assert len(sent[1]["action_card"]["single_title"]) <= 20
    assert m.msg_size(sent[2]) <= 2048 and sent[2]["text"]["content"].endswith("…")
    body = sandbox.calls_to("/topapi/message/corpconversation/asyncsend_v2")[0].body
    assert body["agent_id"] == sandbox.agent_id and body["userid_list"] == "u3"
    with pytest.raises(ValueError):
        await client.send_work_text([f"u{i}" for i in range(101)], "x")


async def test_robot_batch_send_reports_invalid_and_flow_controlled(client, sandbox):
    sandbox.flow_controlled.add("u2")
    users = ["u1", "u2", "nobody"] + [f"extra{i}" for i in range(20)]
    result = await client.robot_batch_send(users, *m.sample_action_card("线索", "内容", [("认领", "https://x/1"),
                                                                                   ("详情", "https://x/2")]))
    calls = sandbox.calls_to("/v1.0/robot/oToMessages/batchSend")
    assert [len(c.body["userIds"]) for c in calls] == [20, 3]  # at most 20 per call
    assert calls[0].body["msgKey"] == "sampleActionCard2"
    assert json.loads(calls[0].body["msgParam"])["actionURL2"] == "https://x/2"
    assert result.flow_controlled_staff_ids == ("u2",)
    assert "nobody" in result.invalid_staff_ids and len(result.process_query_keys) == 2
    assert [r["user"] for r in sandbox.robot_messages] == ["u1"]


def test_sample_msg_keys():
    assert m.sample_action_card("t", "x", [("a", "u")])[0] == "sampleActionCard"
    assert m.sample_action_card("t", "x", [("a", "u"), ("b", "v")], horizontal=True)[0] == "sampleActionCard6"
    assert m.sample_action_card("t", "x", [("a", "u")] * 5)[0] == "sampleActionCard5"
    with pytest.raises(ValueError):
        m.sample_action_card("t", "x", [("a", "u")] * 6)


async def test_group_send(client, sandbox):
    key = await client.robot_group_send("cidManagers", *m.sample_markdown("升级", "线索 **超时**"))
    assert key and sandbox.group_messages[-1]["conversation"] == "cidManagers"


async def test_custom_robot_signed_and_limited_to_20_a_minute(sandbox, clock):
    webhook, secret = sandbox.add_custom_robot()
    c = DingTalkClient(settings_for(sandbox, manager_robot_webhook=webhook, manager_robot_secret=secret),
                       clock=clock, sleep=Sleeps())
    try:
        for i in range(20):
            await c.send_custom_robot_text(f"升级 {i}", at_user_ids=["manager1"])
        assert len(sandbox.group_messages) == 20
        query = sandbox.calls_to("/robot/send")[0].query
        assert query["timestamp"].isdigit() and query["sign"]  # signature checked by the sandbox
        with pytest.raises(ThrottleError) as e:
            await c.send_custom_robot_text("第21条")
        assert 0 < e.value.retry_after <= 60
        assert len(sandbox.calls_to("/robot/send")) == 20  # refused locally, DingTalk never saw it
        clock.advance(61)
        await c.send_custom_robot_markdown("摘要", "**3** 条升级")
        assert len(sandbox.group_messages) == 21
    finally:
        await c.close()


async def test_custom_robot_penalty_and_bad_secret(sandbox, clock):
    webhook, secret = sandbox.add_custom_robot()
    c = DingTalkClient(settings_for(sandbox), clock=clock, sleep=Sleeps())
    other = DingTalkClient(settings_for(sandbox), clock=clock, sleep=Sleeps())
    try:
        for _ in range(20):  # another process used up this robot's minute
            await other.send_custom_robot_text("x", webhook=webhook, secret=secret)
        with pytest.raises(ThrottleError) as e:
            await c.send_custom_robot_text("y", webhook=webhook, secret=secret)
        assert e.value.code == 410100 and e.value.retry_after == 600 and e.value.scope == "recipient"
        clock.advance(120)
        with pytest.raises(ThrottleError) as e:  # still blocked: not even sent
            await c.send_custom_robot_text("y", webhook=webhook, secret=secret)
        assert e.value.code == "local_penalty"
        webhook2, _ = sandbox.add_custom_robot()
        with pytest.raises(PermanentError) as e:
            await c.send_custom_robot_text("z", webhook=webhook2, secret="SECwrong")
        assert e.value.code == 310000
    finally:
        await c.close()
        await other.close()


async def test_stream_connection_open(client, sandbox):
    conn = await client.open_stream_connection([{"type": "EVENT", "topic": "*"}])
    assert conn["endpoint"].startswith("ws://") and conn["ticket"]
    body = sandbox.calls_to("/v1.0/gateway/connections/open")[0].body
    assert body["clientId"] == sandbox.app_key and body["subscriptions"] == [{"type": "EVENT", "topic": "*"}]


async def test_services_key(leadbot):
    assert isinstance(leadbot.ctx.services.dingtalk_client, DingTalkClient)
