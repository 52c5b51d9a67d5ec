"""The async WeCom client against the simulated platform (sandbox/wecom.py): tokens, limits,
errcodes, response_code, customer contact and the group robot."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.platforms.wecom.client import WeComClient
from bot.platforms.token_store import LEASE_POLLS
from bot.platforms.wecom.errors import ErrorKind, WeComError, WeComTransportError
from store.kv import KeyValueStore
from tests.wecom.conftest import AGENT_ID, CORP_ID, ROBOT, SECRET

CARD = {"card_type": "button_interaction", "task_id": "lead-1-zhangsan", "main_title": {"title": "新线索 王小明"},
        "button_list": [{"text": "认领", "style": 1, "key": "claim:tok"}, {"text": "转给同事", "style": 2, "key": "pass:tok"}]}


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
async def make_client(sandbox, clock, sleeps):
    """Clients on the sandbox and the manual clock; `sleeps` records every backoff instead of waiting."""
    made: list[WeComClient] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0)

    def make(**kw) -> WeComClient:
        kw.setdefault("secret", SECRET)
        c = WeComClient(corp_id=CORP_ID, agent_id=AGENT_ID, api_base=sandbox.base_url, clock=clock,
                        sleep=fake_sleep, robot_key=ROBOT, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()


async def test_token_is_cached(make_client, sandbox):
    client = make_client()
    await client.send_text("zhangsan", "一")
    await client.send_text("lisi", "二")
    assert len(sandbox.calls_to("gettoken")) == 1
    assert [m["content"]["content"] for m in sandbox.messages_for("zhangsan")] == ["一"]


async def test_cold_burst_fetches_one_token(make_client, sandbox):
    client = make_client()
    results = await asyncio.gather(*(client.send_text("zhangsan", f"m{i}") for i in range(20)))
    assert len({r.msgid for r in results}) == 20
    assert len(sandbox.calls_to("gettoken")) == 1


async def test_expired_token_mid_burst_loses_no_message(make_client, sandbox):
    client = make_client()
    first = await asyncio.gather(*(client.send_text("zhangsan", f"a{i}") for i in range(10)))
    sandbox.expire_tokens()  # WeCom ends the token early: the next calls get 42001
    second = await asyncio.gather(*(client.send_text("zhangsan", f"b{i}") for i in range(10)))
    assert all(r.msgid for r in first + second)
    delivered = [m["content"]["content"] for m in sandbox.messages_for("zhangsan")]
    assert sorted(delivered) == sorted([f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)])
    assert len(sandbox.calls_to("gettoken")) == 2
    assert any(c.response.get("errcode") == 42001 for c in sandbox.calls)


async def test_unknown_token_is_refetched_once(make_client, sandbox):
    client = make_client()
    await client.send_text("lisi", "x")
    sandbox.revoke_tokens()
    await client.send_text("lisi", "y")
    assert [c.response["errcode"] for c in sandbox.calls_to("message/send")] == [0, 40014, 0]


async def test_token_refreshed_before_expiry(make_client, sandbox, clock):
    client = make_client()
    await client.send_text("lisi", "x")
    clock.advance(timedelta(seconds=7200 - 200))  # inside the safety margin, still valid at WeCom
    await client.send_text("lisi", "y")
    assert len(sandbox.calls_to("gettoken")) == 2
    assert all(c.response["errcode"] == 0 for c in sandbox.calls_to("message/send"))


async def test_token_shared_between_processes_through_kv(make_client, sandbox, engine, clock):
    store = KeyValueStore(engine, clock)
    one, two = make_client(token_store=store), make_client(token_store=store)
    await one.send_text("zhangsan", "from process one")
    await two.send_text("zhangsan", "from process two")
    assert len(sandbox.calls_to("gettoken")) == 1
    assert one.token_fetches == 1 and two.token_fetches == 0
    sandbox.expire_tokens()
    await two.send_text("zhangsan", "after expiry")
    await one.send_text("zhangsan", "one again")
    # two refreshed and stored the new token; one was refused once, then found it in the store
    assert len(sandbox.calls_to("gettoken")) == 2
    assert len(sandbox.messages_for("zhangsan")) == 4


async def test_lease_held_elsewhere_means_waiting_for_that_token(sandbox, engine, clock):
    store = KeyValueStore(engine, clock)
    waits: list[float] = []

    async def sleep_then_publish(seconds: float) -> None:
        # while this process waits, the lease holder (another process) stores its token
        waits.append(seconds)
        if len(waits) == 3:
            await store.set(client._token_key, "TOKEN-FROM-ELSEWHERE", clock.now() + timedelta(hours=1))

    client = WeComClient(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID, api_base=sandbox.base_url,
                         clock=clock, token_store=store, sleep=sleep_then_publish)
    try:
        assert await store.try_lease(client._lease_key, "another-process", timedelta(seconds=15))
        assert await client.access_token() == "TOKEN-FROM-ELSEWHERE"
        assert client.token_fetches == 0 and sandbox.calls_to("gettoken") == [] and len(waits) == 3
    finally:
        await client.close()


async def test_lease_holder_that_never_publishes_does_not_block_forever(make_client, sandbox, engine, clock, sleeps):
    store = KeyValueStore(engine, clock)
    client = make_client(token_store=store)
    assert await store.try_lease(client._lease_key, "crashed-process", timedelta(seconds=15))
    await client.send_text("lisi", "still delivered")
    assert len(sleeps) == LEASE_POLLS and client.token_fetches == 1
    clock.advance(timedelta(seconds=16))  # the dead holder's lease has run out: it can be taken
    assert await store.try_lease(client._lease_key, "next-process", timedelta(seconds=15))


async def test_throttled_call_backs_off_then_succeeds(make_client, sandbox, sleeps):
    client = make_client()
    sandbox.fail_next("message/send", 45009, times=2)
    result = await client.send_text("wangwu", "hello")
    assert result.msgid
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] > 0
    assert [c.response["errcode"] for c in sandbox.calls_to("message/send")] == [45009, 45009, 0]


async def test_busy_and_concurrency_limits_are_retried(make_client, sandbox):
    client = make_client()
    sandbox.fail_next("message/send", -1)
    sandbox.fail_next("message/send", 45033)
    assert (await client.send_text("wangwu", "x")).msgid


async def test_throttle_that_persists_surfaces_as_retryable(make_client, sandbox, sleeps):
    client = make_client(throttle_retries=2)
    sandbox.fail_next("message/send", 45009, times=5)
    with pytest.raises(WeComError) as e:
        await client.send_text("wangwu", "x")
    assert e.value.errcode == 45009 and e.value.kind is ErrorKind.THROTTLE and e.value.retryable
    assert len(sleeps) == 2


async def test_all_invalid_users_is_a_permanent_error(make_client, sandbox):
    client = make_client()
    with pytest.raises(WeComError) as e:
        await client.send_text(["nobody", "ghost"], "x")
    assert e.value.errcode == 81013 and e.value.permanent
    partial = await client.send_text(["lisi", "ghost"], "y")
    assert partial.invalid_users == ("ghost",) and partial.msgid


async def test_template_card_response_code_is_single_use(make_client, sandbox):
    client = make_client()
    sent = await client.send_template_card(["zhangsan", "lisi"], CARD)
    assert sent.msgid and sent.response_code
    await client.update_template_card(sent.response_code, userids=["zhangsan", "lisi"], replace_name="已被张三认领")
    with pytest.raises(WeComError) as e:
        await client.update_template_card(sent.response_code, userids=["lisi"], replace_name="again")
    assert e.value.permanent
    assert [m["replace_name"] for m in sandbox.messages_for("lisi")] == ["已被张三认领"]
    # the code from a tap is single-use too, and can replace the whole card
    tap_code = sandbox.issue_response_code(CARD["task_id"], ["zhangsan"])
    new_card = dict(CARD, main_title={"title": "已认领"}, button_list=[{"text": "推进", "style": 1, "key": "advance:t"}])
    await client.update_template_card(tap_code, userids=["zhangsan"], template_card=new_card)
    with pytest.raises(WeComError):
        await client.update_template_card(tap_code, userids=["zhangsan"], template_card=new_card)
    assert sandbox.messages_for("zhangsan")[0]["card"]["main_title"]["title"] == "已认领"


async def test_response_code_expires_after_72_hours(make_client, sandbox, clock):
    client = make_client()
    sent = await client.send_template_card("zhangsan", CARD)
    clock.advance(timedelta(hours=72, seconds=1))
    with pytest.raises(WeComError):
        await client.update_template_card(sent.response_code, userids=["zhangsan"], replace_name="late")


async def test_task_id_rules_are_checked_before_sending(make_client, sandbox):
    client = make_client()
    for bad in ({**CARD, "task_id": ""}, {**CARD, "task_id": "有中文"}, {**CARD, "task_id": "x" * 129},
                {"card_type": "text_notice", "main_title": {"title": "t"}},
                {"card_type": "news_notice", "action_menu": {"action_list": [{"text": "a", "key": "b"}]},
                 "card_action": {"type": 1, "url": "u"}}):
        with pytest.raises(ValueError):
            await client.send_template_card("zhangsan", bad)
    assert sandbox.calls_to("message/send") == []
    with pytest.raises(ValueError):
        await client.update_template_card("rc", userids=["a"])


async def test_a_task_id_is_accepted_once(make_client, sandbox):
    """As on WeCom, a task_id is unique per app: a second send with it delivers nothing. By
    default the sandbox answers errcode 0 (what integrators report: the harsher reading, a new
    card under an old id vanishes, which is why leadbot's ids are namespaced, conformance W6);
    switched to "refuse" it answers 40035."""
    client = make_client()
    await client.send_template_card("zhangsan", CARD)
    await client.send_template_card("lisi", CARD)
    assert sandbox.repeated_task_ids == ["lead-1-zhangsan"]
    assert [m["task_id"] for m in sandbox.inbox["zhangsan"]] == ["lead-1-zhangsan"]
    assert sandbox.inbox["lisi"] == []
    sandbox.repeated_task_id = "refuse"
    with pytest.raises(WeComError) as refused:
        await client.send_template_card("lisi", CARD)
    assert refused.value.errcode == 40035 and refused.value.kind is ErrorKind.PERMANENT
    assert sandbox.inbox["lisi"] == []
    await client.send_template_card("lisi", {**CARD, "task_id": "lead-1-lisi"})  # a new id goes through
    assert len(sandbox.inbox["lisi"]) == 1


async def test_markdown_and_textcard(make_client, sandbox):
    client = make_client()
    await client.send_markdown("lisi", "**新线索**")
    await client.send_textcard("lisi", "新线索", "<div class=\"gray\">王小明</div>", "https://example.invalid/a/t", "详情")
    [md, card] = sandbox.sent()
    assert md["msgtype"] == "markdown" and md["agentid"] == AGENT_ID
    assert card["textcard"]["btntxt"] == "详情"


async def test_silent_drop_past_30_per_member_per_minute(make_client, sandbox, clock):
    client = make_client()
    results = [await client.send_text("zhangsan", f"n{i}") for i in range(35)]
    assert all(r.msgid for r in results)  # WeCom does not tell the sender
    assert len(sandbox.messages_for("zhangsan")) == 30
    assert len(sandbox.dropped) == 5 and {d["userid"] for d in sandbox.dropped} == {"zhangsan"}
    await client.send_text("lisi", "other member unaffected")
    assert len(sandbox.messages_for("lisi")) == 1
    clock.advance(timedelta(seconds=61))
    await client.send_text("zhangsan", "next minute")
    assert len(sandbox.messages_for("zhangsan")) == 31


async def test_recall(make_client, sandbox, clock):
    client = make_client()
    sent = await client.send_text("lisi", "oops")
    await client.recall(sent.msgid)
    assert sandbox.messages_for("lisi")[0]["recalled"]
    with pytest.raises(WeComError):
        await client.recall(sent.msgid)
    late = await client.send_text("lisi", "old")
    clock.advance(timedelta(hours=24, seconds=1))
    with pytest.raises(WeComError):
        await client.recall(late.msgid)


async def test_external_contact_with_cursor(make_client, sandbox):
    sandbox.page_size = 2
    sandbox.seed_contact("wmABC", name="王小明", unionid="oUNION1", follow_users=["zhangsan", "lisi", "wangwu"])
    client = make_client()
    page = await client.get_external_contact("wmABC")
    assert page["external_contact"]["unionid"] == "oUNION1" and len(page["follow_user"]) == 2
    assert page["next_cursor"]
    everything = await client.get_external_contact_all("wmABC")
    assert [f["userid"] for f in everything["follow_user"]] == ["zhangsan", "lisi", "wangwu"]
    with pytest.raises(WeComError) as e:
        await client.get_external_contact("wmUnknown")
    assert e.value.errcode == 84061 and e.value.permanent


async def test_welcome_message_once_within_20_seconds(make_client, sandbox, leadbot, clock):
    client = make_client()
    sandbox.seed_contact("wmNew", name="李雷")
    await sandbox.send_friend_added("zhangsan", "wmNew")
    code = sandbox.callbacks[-1].plain.split("<WelcomeCode><![CDATA[")[1].split("]]>")[0]
    clock.advance(timedelta(seconds=19))
    await client.send_welcome_msg(code, "您好，我是张三")
    with pytest.raises(WeComError) as e:
        await client.send_welcome_msg(code, "again")
    assert e.value.errcode == 41051
    late = sandbox.issue_welcome_code("lisi", "wmNew")
    clock.advance(timedelta(seconds=21))
    with pytest.raises(WeComError):
        await client.send_welcome_msg(late, "too late")
    assert [w["text"] for w in sandbox.welcome_messages] == ["您好，我是张三"]
    with pytest.raises(ValueError):
        await client.send_welcome_msg(code)


async def test_remark_and_mark_tag(make_client, sandbox):
    sandbox.seed_contact("wmT", follow_users=["lisi"])
    client = make_client()
    await client.remark("lisi", "wmT", remark="王总", remark_mobiles=["13800138000"])
    await client.mark_tag("lisi", "wmT", add_tag=["tagHot"])
    await client.mark_tag("lisi", "wmT", add_tag=["tagB2B"], remove_tag=["tagHot"])
    follow = sandbox.contacts["wmT"]["follow_user"][0]
    assert follow["remark"] == "王总" and follow["remark_mobiles"] == ["13800138000"]
    assert [t["tag_id"] for t in follow["tags"]] == ["tagB2B"]
    with pytest.raises(WeComError):
        await client.remark("zhangsan", "wmT", remark="not my customer")
    with pytest.raises(ValueError):
        await client.mark_tag("lisi", "wmT")


async def test_group_robot(make_client, sandbox, sleeps):
    client = make_client(throttle_retries=1)
    await client.webhook_send(text="线索 #42 超时未跟进", mentioned_list=["zhangsan"])
    await client.webhook_send(ROBOT, markdown="**升级**", mentioned_list=["lisi"])
    posts = sandbox.robot_messages[ROBOT]
    assert posts[0]["body"]["text"]["mentioned_list"] == ["zhangsan"]
    assert posts[1]["body"]["markdown"]["content"].endswith("<@lisi>")
    assert sandbox.calls_to("gettoken") == []  # robots need no token
    for i in range(18):
        await client.webhook_send(text=f"{i}")
    with pytest.raises(WeComError) as e:
        await client.webhook_send(text="21st in a minute")
    assert e.value.errcode == 45009 and e.value.kind is ErrorKind.THROTTLE and len(sleeps) == 1
    with pytest.raises(WeComError) as e:
        await client.webhook_send("not-a-robot", text="x")
    assert e.value.errcode == 93000 and e.value.permanent


async def test_bad_secret_and_unreachable_platform(make_client, sandbox):
    with pytest.raises(WeComError) as e:
        await make_client(secret="wrong").send_text("lisi", "x")
    assert e.value.errcode == 40001 and e.value.permanent
    dead = WeComClient(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID, api_base="http://127.0.0.1:9",
                       sleep=lambda s: asyncio.sleep(0))
    try:
        with pytest.raises(WeComTransportError) as e:
            await dead.send_text("lisi", "x")
        assert e.value.kind is ErrorKind.TRANSIENT
    finally:
        await dead.close()


async def test_card_sent_then_updated_with_its_code(make_client, sandbox):
    client = make_client()
    card = await client.send_template_card("zhangsan", CARD)
    assert card.msgid and card.response_code
    await client.update_template_card(card.response_code, userids=["zhangsan"], replace_name="已处理")


async def test_app_exposes_client(leadbot, sandbox):
    from bot.context import CTX

    services = leadbot.app[CTX].services
    assert isinstance(services.wecom_client, WeComClient)
    await services.wecom_client.send_text("lisi", "wired")
    assert sandbox.messages_for("lisi")[0]["content"]["content"] == "wired"
