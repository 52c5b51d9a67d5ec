"""HTTP event subscription: inbox, dedupe, CRM events, refusals (never a 500, nothing stored)."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest

from bot.events import CrmObjectChanged, UnknownEvent


async def test_crm_event_is_stored_acknowledged_and_parsed(leadbot):
    sb = leadbot.sandbox
    res = await sb.send_crm_event("create", "crm_customer", "data-001", event_id="evt-1")
    assert res.status == 200 and res.reply == "success"
    assert leadbot.recorder.events == []  # answered before any handling
    assert await leadbot.counts() == {"pending": 1}
    assert await leadbot.drain() == 1
    (event,) = leadbot.recorder.events
    assert event == CrmObjectChanged(platform="dingtalk", change="create", object_type="crm_customer",
                                     data_id="data-001", occurred_at=sb.clock.now(), corp_id=sb.corp_id)


async def test_event_delivered_twice_has_one_effect(leadbot):
    sb = leadbot.sandbox
    for _ in range(2):
        res = await sb.send_crm_event("update", "crm_contact", "c-9", event_id="evt-twice")
        assert res.status == 200 and res.reply == "success"  # the resend is acknowledged too
    assert await leadbot.counts() == {"pending": 1}
    await leadbot.drain()
    res = await sb.send_crm_event("update", "crm_contact", "c-9", event_id="evt-twice")  # after handling
    assert res.reply == "success"
    await leadbot.drain()
    assert len(leadbot.recorder.events) == 1
    assert await leadbot.counts() == {"done": 1}


async def test_legacy_event_without_event_id_dedupes_on_type_bizid_time(leadbot):
    sb = leadbot.sandbox
    for _ in range(2):
        await sb.send_crm_event("delete", "crm_customer", "d-1", event_id="", event_time_ms=1700000000000)
    await sb.send_crm_event("delete", "crm_customer", "d-1", event_id="", event_time_ms=1700000001000)
    assert await leadbot.counts() == {"pending": 2}


@pytest.mark.parametrize("spelling", ["signature", "msg_signature"])
@pytest.mark.parametrize("receive", ["app_key", "corp_id"])
async def test_both_query_spellings_and_both_receive_ids(leadbot, spelling, receive):
    sb = leadbot.sandbox
    rid = sb.app_key if receive == "app_key" else sb.corp_id
    res = await sb.send_event("user_add_org", {"UserId": ["u9"]}, receive_id=rid, spelling=spelling)
    assert res.status == 200
    assert sb.decrypt_reply(res.body, rid) == "success"
    await leadbot.drain()
    (event,) = leadbot.recorder.events
    assert isinstance(event, UnknownEvent) and event.kind == "user_add_org"


async def test_seconds_timestamp_is_accepted(leadbot):
    sb = leadbot.sandbox
    res = await sb.send_event("check_url", timestamp=str(int(sb.clock.now().timestamp())))
    assert res.status == 200 and res.reply == "success"


async def _assert_refused(leadbot, resp_status, body, status_range=(400, 500)):
    assert status_range[0] <= resp_status < status_range[1], (resp_status, body)
    assert await leadbot.counts() == {}
    assert leadbot.recorder.events == []


async def test_bad_signature_is_refused(leadbot):
    res = await leadbot.sandbox.send_event("user_add_org", tamper=True)
    assert res.status == 403 and res.body["error"] == "bad_signature"
    await _assert_refused(leadbot, res.status, res.body)


async def test_stale_timestamp_is_refused(leadbot):
    sb = leadbot.sandbox
    old = str(int((sb.clock.now() - timedelta(minutes=10)).timestamp() * 1000))
    res = await sb.send_event("user_add_org", timestamp=old)
    assert res.status == 403 and res.body["error"] == "stale_timestamp"
    future = str(int((sb.clock.now() + timedelta(minutes=10)).timestamp() * 1000))
    res = await sb.send_event("user_add_org", timestamp=future)
    assert res.status == 403
    await _assert_refused(leadbot, res.status, res.body)


async def test_unknown_receive_id_is_refused(leadbot):
    res = await leadbot.sandbox.send_event("user_add_org", receive_id="dingsomeoneelse")
    assert res.status == 403 and res.body["error"] == "unknown_receive_id"
    await _assert_refused(leadbot, res.status, res.body)


def _signed(sb, encrypt, ts, nonce="abcdEFGH12345678"):
    sig = hashlib.sha1("".join(sorted([sb.token, ts, nonce, encrypt])).encode()).hexdigest()
    return {"signature": sig, "timestamp": ts, "nonce": nonce}


@pytest.mark.parametrize("encrypt", ["!!!not base64!!!", "c2hvcnQ=", "A" * 64, "YWJj" * 7 + "==="],
                         ids=["garbage", "short", "no-padding-block", "bad-padding"])
async def test_correctly_signed_garbage_ciphertext_is_a_4xx(leadbot, encrypt):
    sb = leadbot.sandbox
    ts = str(int(sb.clock.now().timestamp() * 1000))
    resp = await leadbot.client.post("/callbacks/dingtalk/events", params=_signed(sb, encrypt, ts),
                                     json={"encrypt": encrypt})
    body = await resp.json()
    assert body["error"] in ("bad_ciphertext", "unknown_receive_id", "malformed_json")
    await _assert_refused(leadbot, resp.status, body)


@pytest.mark.parametrize("raw", [b"{", b"[]", b"", b'{"encrypt": 5}', b'{"other": "x"}', "\xff".encode("latin-1")])
async def test_malformed_bodies_are_a_4xx(leadbot, raw):
    sb = leadbot.sandbox
    ts = str(int(sb.clock.now().timestamp() * 1000))
    resp = await leadbot.client.post("/callbacks/dingtalk/events", params=_signed(sb, "x", ts), data=raw,
                                     headers={"Content-Type": "application/json"})
    await _assert_refused(leadbot, resp.status, await resp.text())


@pytest.mark.parametrize("query", [{}, {"signature": "a", "nonce": "n"}, {"timestamp": "1", "nonce": "n"},
                                   {"signature": "a", "timestamp": "not-a-number", "nonce": "n"}])
async def test_missing_or_malformed_query_is_a_4xx(leadbot, query):
    resp = await leadbot.client.post("/callbacks/dingtalk/events", params=query, json={"encrypt": "x"})
    await _assert_refused(leadbot, resp.status, await resp.text())


async def test_decrypted_non_event_json_is_a_4xx(leadbot):
    sb = leadbot.sandbox
    for plain in ("[1, 2]", json.dumps({"no": "type"}), "not json"):
        res = await sb.post_encrypted(plain)
        await _assert_refused(leadbot, res.status, res.body)


async def test_events_answer_fast(leadbot):
    """DingTalk waits 1.5 s: storing and answering must stay far below that."""
    import time

    sb = leadbot.sandbox
    started = time.perf_counter()
    for i in range(5):
        res = await sb.send_crm_event("update", "crm_customer", f"fast-{i}")
        assert res.status == 200
    assert (time.perf_counter() - started) / 5 < 0.5
