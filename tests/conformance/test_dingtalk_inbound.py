"""What DingTalk pushes, through the HTTP routes: robot messages keep the platform's hour while
events and card taps keep the replay window (D12), and a message that arrives without its text
because the organisation's quota is used up is logged and answered (D13)."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.context import CTX
from tests.conformance.conftest import DT_REPS, start_dingtalk_leadbot


async def test_robot_messages_keep_the_hour_events_and_taps_the_window(aiohttp_client, engine, clock, store,
                                                                       dingtalk) -> None:
    """D12: a robot message is valid for 1 h and never redelivered, so one 30 minutes late is
    taken (and answered); an event or a card tap that old is refused (replay window 300 s)."""
    await store.import_reps(DT_REPS)
    cli = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk)
    sent_ms = int(clock.now().timestamp() * 1000)
    robot = dingtalk.robot_body("dt_chen", "帮助")
    event = dingtalk.event_plaintext("ding_paas_object_data_create", {"DataId": "x1", "ObjectType": "crm_customer"})
    clock.advance(timedelta(minutes=30))
    late_robot = await dingtalk.post_robot(robot, timestamp=str(sent_ms))
    assert late_robot.status == 200
    late_event = await dingtalk.post_encrypted(json.dumps(event), timestamp=str(sent_ms))
    assert late_event.status in (400, 403)
    late_tap = await dingtalk.tap_card("nope", "dt_chen", key="claim:x", timestamp=str(sent_ms))
    assert late_tap.status in (400, 403)
    await cli.app[CTX].services.processor.drain()
    assert dingtalk.session_replies, "the late robot message was answered"


async def test_quota_exhausted_message_is_logged_and_answered(aiohttp_client, engine, clock, store,
                                                             dingtalk) -> None:
    """D13: errCode 20001, no text: not a silent unknown event; the sender is told through the
    conversation's sessionWebhook (no robot API call, which the quota also stops)."""
    await store.import_reps(DT_REPS)
    cli = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk)
    res = await dingtalk.post_robot(dingtalk.robot_quota_body("dt_chen"))
    assert res.status == 200
    await cli.app[CTX].services.processor.drain()
    [reply] = dingtalk.session_replies
    assert "额度" in reply["msg"]["text"]["content"]
    assert not dingtalk.calls_to("/v1.0/robot/oToMessages/batchSend")
