"""Interactive cards: delivered and updated through the simulated DingTalk, taps answered inline
with the card data to show, and turned into the same CardAction a WeCom tap produces."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from bot.events import CardAction
from bot.platforms.dingtalk.crypto import card_sign
from bot.platforms.dingtalk.inbound import card_response


def _claimed(event):
    if isinstance(event, CardAction) and event.action == "claim":
        return {"card_data": {"status": "claimed", "owner": event.actor_id},
                "private_data": {"button": "已认领"}}
    return None


async def deliver(leadbot, out_track_id="lead42", users=("u1", "u2")):
    return await leadbot.dingtalk.create_and_deliver_card(
        out_track_id, card_data={"title": "新线索：王小明", "status": "open", "tags": ["上海", "A级"]},
        user_ids=list(users), private_data={u: {"button": "认领", "key": f"claim:TOKEN-{u}"} for u in users})


async def test_card_delivered_tapped_answered_and_updated(leadbot):
    sb = leadbot.sandbox
    delivery = await deliver(leadbot)
    assert delivery.ok and [r.space_id for r in delivery.results] == ["u1", "u2"]
    card = sb.cards["lead42"]
    assert card.card_data["tags"] == '["上海", "A级"]'  # cardParamMap values are strings
    create = sb.calls_to("/v1.0/card/instances/createAndDeliver")[-1].body
    assert create["openSpaceId"] == "dtv1.card//IM_ROBOT.u1;IM_ROBOT.u2"
    assert create["callbackType"] == "HTTP" and create["callbackRouteKey"]
    assert create["imRobotOpenDeliverModel"] == {"spaceType": "IM_ROBOT", "robotCode": sb.robot_code}

    leadbot.recorder.reply = _claimed
    res = await sb.tap_card("lead42", "u1", key="claim:TOKEN-u1")
    assert res.status == 200
    assert res.body == {"cardData": {"cardParamMap": {"status": "claimed", "owner": "u1"}},
                        "userPrivateData": {"cardParamMap": {"button": "已认领"}},
                        "cardUpdateOptions": {"updateCardDataByKey": True, "updatePrivateDataByKey": True}}
    (tap,) = leadbot.recorder.events
    assert isinstance(tap, CardAction)
    assert (tap.platform, tap.actor_id, tap.key, tap.action, tap.token, tap.card_ref) == \
        ("dingtalk", "u1", "claim:TOKEN-u1", "claim", "TOKEN-u1", "lead42")
    assert tap.occurred_at == sb.clock.now()
    assert await leadbot.counts() == {"done": 1}  # handled inline, under its dedupe key
    assert card.view("u1") == {"title": "新线索：王小明", "status": "claimed", "owner": "u1", "tags": '["上海", "A级"]',
                               "button": "已认领", "key": "claim:TOKEN-u1"}
    assert card.view("u2")["button"] == "认领" and card.view("u2")["status"] == "claimed"

    # Later, leadbot updates the card for everyone through the API.
    await leadbot.dingtalk.update_card("lead42", card_data={"status": "closed"},
                                       private_data={"u2": {"button": "已被 u1 认领"}})
    assert card.view("u2")["status"] == "closed" and card.view("u2")["button"] == "已被 u1 认领"
    assert card.view("u1")["owner"] == "u1"  # by key: the rest stays
    put = sb.calls_to("/v1.0/card/instances")[-1]
    # The shared data by key; a user's private data is their whole overlay (D11), so it replaces.
    assert put.method == "PUT" and put.body["cardUpdateOptions"] == {"updateCardDataByKey": True,
                                                                     "updatePrivateDataByKey": False}


async def test_an_update_replaces_each_users_whole_overlay(leadbot):
    """A user's private data is their whole overlay on the shared data (D11: only what differs):
    an update that leaves a key out shows the new shared value, not an older private one."""
    await deliver(leadbot)
    card = leadbot.sandbox.cards["lead42"]
    await leadbot.dingtalk.update_card("lead42", card_data={"title": "你已认领：王小明"},
                                       private_data={"u1": {"title": "你已认领：王小明 13812345678", "buttons": "[1]"}})
    await leadbot.dingtalk.update_card("lead42", card_data={"title": "已推进：王小明"},
                                       private_data={"u1": {"buttons": "[2]"}})
    assert card.view("u1")["title"] == "已推进：王小明" and card.view("u1")["buttons"] == "[2]"
    assert card.view("u2")["button"] == "认领"  # another user's overlay is untouched
    put = leadbot.sandbox.calls_to("/v1.0/card/instances")[-1].body
    assert put["cardUpdateOptions"] == {"updateCardDataByKey": True, "updatePrivateDataByKey": False}


async def test_dingtalk_tap_is_the_same_card_action_as_a_wecom_tap(leadbot):
    wecom = pytest.importorskip("bot.platforms.wecom.parse")
    sb = leadbot.sandbox
    await deliver(leadbot, "task_77")
    await sb.tap_card("task_77", "u2", key="claim:TOKEN-u2")
    (dt_tap,) = leadbot.recorder.events
    wc_tap = wecom.parse_event({"MsgType": "event", "Event": "template_card_event", "FromUserName": "u2",
                                "EventKey": "claim:TOKEN-u2", "TaskId": "task_77", "CardType": "button_interaction",
                                "CreateTime": str(int(sb.clock.now().timestamp())), "ResponseCode": "rc"})
    assert type(dt_tap) is type(wc_tap) is CardAction
    for attr in ("actor_id", "key", "action", "token", "card_ref", "occurred_at"):
        assert getattr(dt_tap, attr) == getattr(wc_tap, attr), attr


async def test_action_id_with_token_param(leadbot):
    sb = leadbot.sandbox
    await deliver(leadbot, "lead43")
    await sb.tap_card("lead43", "u1", action_id="snooze", params={"token": "TOK-S", "minutes": 30})
    (tap,) = leadbot.recorder.events
    assert tap.key == "snooze:TOK-S" and tap.params == {"token": "TOK-S", "minutes": "30"}


async def test_double_tap_is_one_action(leadbot):
    sb = leadbot.sandbox
    await deliver(leadbot)
    leadbot.recorder.reply = _claimed
    first = await sb.tap_card("lead42", "u1", key="claim:TOKEN-u1")
    sb.clock.advance(0.5)
    second = await sb.tap_card("lead42", "u1", key="claim:TOKEN-u1")
    assert first.status == second.status == 200
    assert second.body == {}  # the card already shows the first answer
    assert len(leadbot.recorder.events) == 1
    sb.clock.advance(timedelta(minutes=5))
    await sb.tap_card("lead42", "u1", key="claim:TOKEN-u1")  # a deliberate tap later is new
    assert len(leadbot.recorder.events) == 2


async def test_slow_handler_answers_within_budget_and_finishes_later(leadbot):
    sb = leadbot.sandbox
    await deliver(leadbot)
    inbound = leadbot.ctx.services.dingtalk_inbound
    inbound.card_budget = 0.01
    leadbot.recorder.reply = _claimed
    release = asyncio.Event()

    async def slow():
        await release.wait()  # the handler is still busy when DingTalk's budget runs out

    leadbot.recorder.delay = slow
    res = await sb.tap_card("lead42", "u2", key="claim:TOKEN-u2")
    assert res.status == 200 and res.body == {}
    release.set()
    await leadbot.processor.late_answers_done()
    assert len(leadbot.recorder.events) == 1
    assert await leadbot.counts() == {"done": 1}


async def test_stopping_lets_a_late_answer_finish_and_cuts_off_one_that_hangs(leadbot):
    """Shutting down does not drop a tap whose answer is late (its card update still goes into
    the outbox), and a handler that never ends does not hold the shutdown past its bound."""
    sb = leadbot.sandbox
    await deliver(leadbot)
    leadbot.ctx.services.dingtalk_inbound.card_budget = 0.01
    leadbot.recorder.reply = _claimed
    release = asyncio.Event()

    async def slow():
        await release.wait()

    leadbot.recorder.delay = slow
    assert (await sb.tap_card("lead42", "u2", key="claim:TOKEN-u2")).body == {}
    asyncio.get_running_loop().call_later(0.05, release.set)
    await leadbot.processor.stop()
    assert await leadbot.counts() == {"done": 1}

    hung = asyncio.Event()  # never set
    leadbot.recorder.delay = hung.wait
    leadbot.processor.LATE_ANSWER_STOP_SECONDS = 0.05
    sb.clock.advance(timedelta(minutes=5))
    assert (await sb.tap_card("lead42", "u1", key="claim:TOKEN-u1")).body == {}
    await asyncio.wait_for(leadbot.processor.stop(), timeout=5)
    assert await leadbot.counts() == {"done": 1, "pending": 1}  # handled again by the next process


async def test_card_callback_secret_and_registered_route(make_leadbot):
    lb = await make_leadbot(dingtalk={"card_callback_secret": "card-secret-123"})
    sb = lb.sandbox
    sb.card_callback_secret = "card-secret-123"
    await lb.dingtalk.register_card_callback(sb.leadbot_url + "/callbacks/dingtalk/card")
    key = lb.dingtalk.card_route_key
    assert sb.card_callbacks[key] == (sb.leadbot_url + "/callbacks/dingtalk/card", "card-secret-123")
    await deliver(lb, "lead50")
    res = await sb.tap_card("lead50", "u1", key="claim:TOKEN-u1")
    assert res.status == 200
    res = await sb.tap_card("lead50", "u1", key="claim:TOKEN-u1", secret=sb.app_secret)  # wrong secret now
    assert res.status == 403


@pytest.mark.parametrize("case", ["bad_sign", "no_headers", "stale", "bad_json", "no_out_track_id", "not_object"])
async def test_bad_card_callbacks_are_refused(leadbot, case):
    sb = leadbot.sandbox
    ts = str(int(sb.clock.now().timestamp() * 1000))
    body = json.dumps(sb.card_tap_body("lead42", "u1", key="claim:T")).encode()
    headers = {"x-ddpaas-signature-timestamp": ts, "x-ddpaas-signature": card_sign(ts, sb.app_secret)}
    if case == "bad_sign":
        headers["x-ddpaas-signature"] = card_sign(ts, "wrong")
    elif case == "no_headers":
        headers = {}
    elif case == "stale":
        old = str(int((sb.clock.now() - timedelta(hours=1)).timestamp() * 1000))
        headers = {"x-ddpaas-signature-timestamp": old, "x-ddpaas-signature": card_sign(old, sb.app_secret)}
    elif case == "bad_json":
        body = b"{not json"
    elif case == "no_out_track_id":
        body = json.dumps({"type": "actionCallback", "userId": "u1", "content": "{}"}).encode()
    elif case == "not_object":
        body = b'"string"'
    resp = await leadbot.client.post("/callbacks/dingtalk/card", data=body,
                                     headers={**headers, "Content-Type": "application/json"})
    assert 400 <= resp.status < 500, await resp.text()
    assert await leadbot.counts() == {}
    assert leadbot.recorder.events == []


def test_card_response_shapes():
    assert card_response(None) == {} and card_response(True) == {} and card_response("x") == {}
    native = {"cardData": {"cardParamMap": {"a": 1}}, "cardUpdateOptions": {"updateCardDataByKey": 1}}
    assert card_response(native) == {"cardData": {"cardParamMap": {"a": "1"}},
                                     "cardUpdateOptions": {"updateCardDataByKey": True}}
    assert card_response({"card_data": {"s": "x"}, "replace": True}) == {
        "cardData": {"cardParamMap": {"s": "x"}},
        "cardUpdateOptions": {"updateCardDataByKey": False, "updatePrivateDataByKey": False}}

    class Rendered:
        def tap_reply(self):
            return {"userPrivateData": {"cardParamMap": {"b": "y"}}}

    assert card_response(Rendered()) == {"userPrivateData": {"cardParamMap": {"b": "y"}}}


async def test_group_card_and_unknown_user(leadbot):
    sb = leadbot.sandbox
    delivery = await leadbot.dingtalk.create_and_deliver_card(
        "lead60", card_data={"title": "t"}, user_ids=["u1", "ghost"], open_conversation_id="cidPool",
        at_user_ids={"u1": "小王"})
    assert [(r.space_type, r.space_id, r.success) for r in delivery.results] == [
        ("IM_ROBOT", "u1", True), ("IM_ROBOT", "ghost", False), ("IM_GROUP", "cidPool", True)]
    assert not delivery.ok and delivery.failed[0].error
    # The same outTrackId again (an outbox retry) does not make a second card.
    again = await leadbot.dingtalk.create_and_deliver_card("lead60", card_data={"title": "t"}, user_ids=["u1"])
    assert again.ok and len(sb.cards) == 1 and sb.cards["lead60"].spaces == ["IM_ROBOT.u1", "IM_GROUP.cidPool"]


async def test_rendered_card_shapes_are_accepted(leadbot):
    """bot.cards.render_dingtalk_card wraps maps in {"cardParamMap": …}; the client takes both."""
    sb = leadbot.sandbox
    await leadbot.dingtalk.create_and_deliver_card(
        "lead70", card_data={"cardParamMap": {"title": "t", "n": 1}}, user_ids=["u1"],
        private_data={"u1": {"cardParamMap": {"key": "claim:X"}}})
    assert sb.cards["lead70"].view("u1") == {"title": "t", "n": "1", "key": "claim:X"}
    await leadbot.dingtalk.update_card("lead70", card_data={"cardParamMap": {"title": "t2"}},
                                       private_data={"u1": {"cardParamMap": {"key": ""}}})
    assert sb.cards["lead70"].view("u1") == {"title": "t2", "n": "1", "key": ""}


async def test_missing_template_is_a_permanent_error(make_leadbot):
    from bot.platforms.dingtalk.errors import PermanentError

    lb = await make_leadbot(dingtalk={"card_template_id": ""})
    with pytest.raises(PermanentError):
        await lb.dingtalk.create_and_deliver_card("x", card_data={"a": "b"}, user_ids=["u1"])


async def test_card_callback_url_is_registered_at_start(make_leadbot):
    lb = await make_leadbot(server={"public_url": "https://leadbot.example.com"})
    for _ in range(100):
        if lb.sandbox.card_callbacks:
            break
        await asyncio.sleep(0.01)
    assert lb.sandbox.card_callbacks[lb.dingtalk.card_route_key][0] == \
        "https://leadbot.example.com/callbacks/dingtalk/card"


async def test_a_card_sent_again_is_delivered_not_created_twice(leadbot):
    """conformance D9 (suspected reading): createAndDeliver refuses an outTrackId it has seen
    (param.cardAlreadyExist); a redelivery after a crash then delivers the existing card, so the
    rep has one card and the send is not a permanent failure."""
    client, sb = leadbot.dingtalk, leadbot.sandbox
    first = await client.create_and_deliver_card("lead-d9", card_data={"title": "x"}, user_ids=["u1"])
    again = await client.create_and_deliver_card("lead-d9", card_data={"title": "x"}, user_ids=["u1"])
    assert first.ok and again.ok and again.out_track_id == "lead-d9"
    assert sb.calls_to("/v1.0/card/instances/createAndDeliver")[-1].status == 400
    assert len(sb.calls_to("/v1.0/card/instances/deliver")) == 1
    assert sb.cards["lead-d9"].spaces == ["IM_ROBOT.u1"]
