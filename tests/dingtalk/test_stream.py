"""Stream mode: one normaliser for both transports, the Stream handler classes fed frames
directly, and a whole Stream session against the simulated DingTalk's WebSocket gateway."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.events import CardAction, CrmObjectChanged, TextCommand
from bot.platforms.dingtalk import normalize as n
from bot.platforms.dingtalk.stream import StreamTransport


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.closed = False

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def close(self) -> None:
        self.closed = True


def test_normaliser_crm_event_both_shapes(sandbox, clock):
    http = sandbox.event_plaintext("ding_paas_object_data_update",
                                   {"BizId": "d-7", "ObjectType": "crm_customer", "DataId": "d-7", "DataType": "master"},
                                   event_id="evt-77", event_time_ms=1790000000123)
    frame = sandbox.stream_event_frame("ding_paas_object_data_update",
                                       {"dataId": "d-7", "dataType": "master", "objectType": "crm_customer"},
                                       event_id="evt-77", born_ms=1790000000123)
    a = n.event_from_http(http, clock.now())
    b = n.event_from_stream(frame, clock.now())
    assert a.dedupe_key == b.dedupe_key == "dingtalk:event:evt-77"
    ea, eb = n.to_event(a.payload), n.to_event(b.payload)
    assert ea == eb
    assert isinstance(ea, CrmObjectChanged) and (ea.change, ea.object_type, ea.data_id, ea.corp_id) == \
        ("update", "crm_customer", "d-7", sandbox.corp_id)
    assert int(ea.occurred_at.timestamp() * 1000) == 1790000000123


def test_normaliser_robot_and_card_both_shapes(sandbox, clock):
    body = sandbox.robot_body("u1", "我的线索", msg_id="m-1")
    frame = sandbox.stream_callback_frame(n.ROBOT_TOPIC, body)
    a = n.robot_message(body, clock.now())
    b = n.robot_message(json.loads(frame["data"]), clock.now())
    assert a == b and isinstance(n.to_event(a.payload), TextCommand)
    tap = sandbox.card_tap_body("lead1", "u2", key="claim:T")
    frame = sandbox.stream_callback_frame(n.CARD_TOPIC, tap)
    ts = int(frame["headers"]["time"])
    a = n.card_callback(tap, ts, clock.now())
    b = n.card_callback(json.loads(frame["data"]), ts, clock.now())
    assert a == b and n.to_event(a.payload) == n.to_event(b.payload)
    assert isinstance(n.to_event(a.payload), CardAction)


def test_normaliser_refuses_what_is_not_an_event():
    with pytest.raises(n.NotNormalisable):
        n.event_from_http({"no": "type"})
    with pytest.raises(n.NotNormalisable):
        n.event_from_stream({"headers": {"eventType": "x"}, "data": "{not json"})
    with pytest.raises(n.NotNormalisable):
        n.card_callback({"userId": "u"})


@pytest.fixture
def transport(leadbot):
    return StreamTransport(leadbot.dingtalk, leadbot.ctx.services.dingtalk_inbound)


async def test_event_frame_is_stored_and_acked_success(leadbot, transport):
    sb, ws = leadbot.sandbox, FakeSocket()
    frame = sb.stream_event_frame("ding_paas_object_data_create", {"dataId": "x1", "objectType": "crm_contact"},
                                  event_id="evt-s1")
    await transport.handle_frame(json.dumps(frame), ws)
    (ack,) = ws.sent
    assert ack["code"] == 200 and ack["headers"]["messageId"] == frame["headers"]["messageId"]
    assert json.loads(ack["data"]) == {"status": "SUCCESS", "message": "OK"}
    # The same event arriving over HTTP too (both transports on) is a duplicate, not a second effect.
    res = await sb.send_crm_event("create", "crm_contact", "x1", event_id="evt-s1")
    assert res.reply == "success"
    await transport.handle_frame(frame, ws)  # and a Stream redelivery
    assert json.loads(ws.sent[-1]["data"]) == {"status": "SUCCESS", "message": "OK"}
    await leadbot.drain()
    assert len(leadbot.recorder.events) == 1 and isinstance(leadbot.recorder.events[0], CrmObjectChanged)


async def test_event_frame_asks_for_redelivery_when_the_store_fails(leadbot, transport, monkeypatch):
    inbound = leadbot.ctx.services.dingtalk_inbound

    async def broken(*a, **kw):
        raise ConnectionError("database away")

    monkeypatch.setattr(inbound, "accept", broken)
    ws = FakeSocket()
    await transport.handle_frame(leadbot.sandbox.stream_event_frame("user_add_org", {"userId": ["u1"]}), ws)
    assert json.loads(ws.sent[0]["data"]) == {"status": "LATER", "message": "later"}


async def test_robot_frame(leadbot, transport):
    ws = FakeSocket()
    frame = leadbot.sandbox.stream_callback_frame(n.ROBOT_TOPIC, leadbot.sandbox.robot_body("u1", "帮助", msg_id="m9"))
    await transport.handle_frame(frame, ws)
    assert ws.sent[0]["code"] == 200
    await leadbot.drain()
    (cmd,) = leadbot.recorder.events
    assert isinstance(cmd, TextCommand) and cmd.text == "帮助" and cmd.message_id == "m9"


async def test_card_frame_answers_card_data_in_the_ack(leadbot, transport):
    leadbot.recorder.reply = lambda e: {"card_data": {"status": "claimed"}}
    ws = FakeSocket()
    frame = leadbot.sandbox.stream_callback_frame(n.CARD_TOPIC, leadbot.sandbox.card_tap_body("c1", "u1", key="claim:T"))
    await transport.handle_frame(frame, ws)
    ack = ws.sent[0]
    assert ack["code"] == 200
    assert json.loads(ack["data"])["response"]["cardData"] == {"cardParamMap": {"status": "claimed"}}
    (tap,) = leadbot.recorder.events
    assert tap.key == "claim:T" and tap.card_ref == "c1"


async def test_ping_and_disconnect(leadbot, transport):
    ws = FakeSocket()
    ping = leadbot.sandbox.stream_ping_frame()
    await transport.handle_frame(ping, ws)
    assert json.loads(ws.sent[0]["data"]) == json.loads(ping["data"])  # opaque echoed
    disconnect = {"specVersion": "1.0", "type": "SYSTEM", "data": "{}",
                  "headers": {"topic": "disconnect", "messageId": "d1", "contentType": "application/json"}}
    await transport._frame(json.dumps(disconnect), ws)
    assert ws.closed


async def test_whole_stream_session_against_the_sandbox(make_leadbot, sandbox):
    lb = await make_leadbot(dingtalk={"stream": True})
    transport = lb.ctx.services.dingtalk_stream
    await asyncio.wait_for(sandbox.stream_connected.wait(), 5)

    ack = await sandbox.push_frame(sandbox.stream_event_frame(
        "ding_paas_object_data_create", {"dataId": "w1", "objectType": "crm_customer"}, event_id="evt-ws"))
    assert json.loads(ack["data"]) == {"status": "SUCCESS", "message": "OK"}
    assert sandbox.invalid_acks == []  # conformance D8: status and message, as DingTalk takes them
    ack = await sandbox.stream_robot_text("u2", "我的线索")
    assert ack["code"] == 200

    await lb.dingtalk.create_and_deliver_card("lead-s", card_data={"status": "open"}, user_ids=["u1"])
    assert sandbox.calls_to("/v1.0/card/instances/createAndDeliver")[-1].body["callbackType"] == "STREAM"
    lb.recorder.reply = lambda e: {"card_data": {"status": "claimed"}} if isinstance(e, CardAction) else None
    await sandbox.stream_tap_card("lead-s", "u1", key="claim:TOK")
    assert sandbox.cards["lead-s"].view("u1")["status"] == "claimed"

    await lb.drain()
    kinds = [type(e).__name__ for e in lb.recorder.events]
    assert kinds == ["CardAction", "CrmObjectChanged", "TextCommand"]

    # DingTalk drops the connection: leadbot opens a new one with a new ticket.
    await sandbox._stream_ws.close()
    for _ in range(1000):
        if len(sandbox.calls_to("/v1.0/gateway/connections/open")) == 2 and sandbox.stream_connected.is_set():
            break
        await asyncio.sleep(0.005)
    ack = await sandbox.push_frame(sandbox.stream_ping_frame())
    assert ack["code"] == 200
    assert len(sandbox.calls_to("/v1.0/gateway/connections/open")) == 2
    await transport.stop()
