"""Hostile input against the DingTalk routes (events, robot, card): never a 500 (or a 503 while the
store is up), and nothing stored from a refused request."""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from sandbox.dingtalk import hmac_b64
from tests.fuzz.conftest import FUZZ, MAX_BODY
from tests.fuzz.strategies import JSON_VALUES, NASTY_TEXT, deep_json, hostile_json, timestamps

# What an HTTP client can put in a header at all (aiohttp refuses control characters before sending).
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)

EVENT_KEYS = ["EventType", "eventType", "eventId", "EventTime", "CorpId", "BizId", "UserId", "ExternalUserId",
              "DataId", "ObjectType", "UnionId", "StaffId"]
ROBOT_KEYS = ["msgId", "msgtype", "text", "senderStaffId", "conversationId", "conversationType", "sessionWebhook",
              "sessionWebhookExpiredTime", "createAt", "robotCode", "content", "richText"]
CARD_KEYS = ["type", "outTrackId", "corpId", "userId", "content", "extension", "spaceType", "userIdType"]


def _now_ms(target: Any) -> int:
    return int(target.clock.now().timestamp() * 1000)


@FUZZ
@given(data=st.data())
async def test_events_with_hostile_body_and_query(target, data) -> None:
    """Garbage bodies, with random or missing query parameters."""
    body = data.draw(hostile_json(["encrypt"]), "body")
    params = {"signature": data.draw(st.text(max_size=40)),
              "timestamp": data.draw(timestamps(_now_ms(target) // 1000, millis=True)),
              "nonce": data.draw(st.text(max_size=20))}
    dropped = data.draw(st.sampled_from([None, "signature", "timestamp", "nonce"]))
    if dropped:
        params.pop(dropped)
    await target.send("POST", f"/callbacks/dingtalk/events?{urlencode(params)}", data=body,
                      headers={"Content-Type": "application/json"}, expect_refused=True)


@FUZZ
@given(data=st.data())
async def test_events_signed_with_hostile_plaintext(target, data) -> None:
    """Encrypted and signed correctly, but what is inside is hostile (or a real shape with fuzzed
    values), at fresh or stale timestamps, for the right or a wrong receive id."""
    plain = data.draw(st.one_of(
        hostile_json(EVENT_KEYS).map(lambda b: b.decode("utf-8", errors="replace")),
        st.dictionaries(st.sampled_from(EVENT_KEYS), st.one_of(NASTY_TEXT, JSON_VALUES), max_size=8).map(
            lambda d: json.dumps(d, ensure_ascii=False)),
        st.text(max_size=200)), "plaintext")
    if len(plain.encode()) > MAX_BODY // 2:
        plain = plain[: MAX_BODY // 4]  # leave the envelope under the cap: oversize has its own test
    ts = data.draw(timestamps(_now_ms(target) // 1000, millis=True), "timestamp")
    receive_id = data.draw(st.sampled_from([None, None, "dingsandboxcorp", "wrong-receiver"]))
    dt = target.dingtalk
    try:
        enc = dt.encrypt_event(plain, receive_id=receive_id, timestamp=ts)
    except Exception:
        return  # the SDK cannot encrypt it (e.g. lone surrogates): nothing to send
    spelling = data.draw(st.sampled_from(["signature", "msg_signature"]))
    query = ({"signature": enc["msg_signature"], "timestamp": enc["timeStamp"], "nonce": enc["nonce"]}
             if spelling == "signature" else
             {"msg_signature": enc["msg_signature"], "timeStamp": enc["timeStamp"], "nonce": enc["nonce"]})
    status = await target.send("POST", f"/callbacks/dingtalk/events?{urlencode(query)}",
                               data=json.dumps({"encrypt": enc["encrypt"]}).encode(),
                               headers={"Content-Type": "application/json"})
    if status == 200:
        before = (await target.counts())["inbox"]
        again = await target.send("POST", f"/callbacks/dingtalk/events?{urlencode(query)}",
                                  data=json.dumps({"encrypt": enc["encrypt"]}).encode())
        assert again == 200 and (await target.counts())["inbox"] == before  # a retry is a no-op


def _sendable(headers: dict[str, str]) -> dict[str, str]:
    """Header values as raw bytes on the wire (UTF-8 seen as Latin-1), minus the control
    characters an HTTP client refuses to send."""
    return {k: "".join(c for c in v.encode("utf-8", "replace").decode("latin-1") if c >= " " and c != "\x7f")
            for k, v in headers.items()}


def _robot_headers(ts: str, secret: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "timestamp": ts, "sign": hmac_b64(secret, f"{ts}\n{secret}")}


def _card_headers(ts: str, secret: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "x-ddpaas-signature-timestamp": ts,
            "x-ddpaas-signature": hmac_b64(secret, ts)}


@FUZZ
@given(data=st.data())
async def test_robot_with_hostile_input(target, data) -> None:
    dt = target.dingtalk
    ts = data.draw(timestamps(_now_ms(target) // 1000, millis=True), "timestamp")
    how = data.draw(st.sampled_from(["signed", "wrong_secret", "garbage_sign", "no_headers"]), "how")
    headers = {"signed": _robot_headers(ts, dt.app_secret), "wrong_secret": _robot_headers(ts, "not-the-secret"),
               "garbage_sign": {"timestamp": ts, "sign": data.draw(HEADER_TEXT)},
               "no_headers": {}}[how]
    body = data.draw(st.one_of(
        hostile_json(ROBOT_KEYS),
        st.builds(lambda staff, txt: json.dumps(dt.robot_body(staff, txt), ensure_ascii=False).encode(),
                  NASTY_TEXT, NASTY_TEXT)), "body")
    status = await target.send("POST", "/callbacks/dingtalk/robot", data=body,
                               headers=_sendable(headers))
    if how != "signed":
        assert status >= 400


@FUZZ
@given(data=st.data())
async def test_card_with_hostile_input(target, data) -> None:
    dt = target.dingtalk
    secret = dt.card_callback_secret or dt.app_secret
    ts = data.draw(timestamps(_now_ms(target) // 1000, millis=True), "timestamp")
    how = data.draw(st.sampled_from(["signed", "signed", "wrong_secret", "garbage_sign", "no_headers"]), "how")
    headers = {"signed": _card_headers(ts, secret), "wrong_secret": _card_headers(ts, "nope"),
               "garbage_sign": {"x-ddpaas-signature-timestamp": ts,
                                "x-ddpaas-signature": data.draw(HEADER_TEXT)},
               "no_headers": {}}[how]
    content = data.draw(st.one_of(
        NASTY_TEXT, JSON_VALUES.map(json.dumps),
        st.builds(lambda ids, params: json.dumps({"cardPrivateData": {"actionIds": ids, "params": params}}),
                  st.one_of(st.lists(NASTY_TEXT, max_size=3), JSON_VALUES),
                  st.one_of(st.dictionaries(st.sampled_from(["key", "token", "x"]), NASTY_TEXT), JSON_VALUES)),
        st.integers(100, 5000).map(lambda d: deep_json(d).decode())), "content")
    shape = {"type": "actionCallback", "outTrackId": data.draw(NASTY_TEXT), "corpId": dt.corp_id,
             "userId": data.draw(st.one_of(st.just("u1"), NASTY_TEXT)), "content": content}
    body = data.draw(st.one_of(hostile_json(CARD_KEYS), st.just(json.dumps(shape, ensure_ascii=False).encode())),
                     "body")
    status = await target.send("POST", "/callbacks/dingtalk/card", data=body,
                               headers=_sendable(headers))
    if how != "signed":
        assert status >= 400


async def test_named_attacks_on_dingtalk_routes(target) -> None:
    """Deep nesting, oversize, stale timestamps and replays, each once, deterministically."""
    dt = target.dingtalk
    now_ms = _now_ms(target)
    ts = str(now_ms)
    deep = [deep_json(100_000), deep_json(100_000, "{"), deep_json(2_000)]
    big = b'{"encrypt":"' + b"A" * (MAX_BODY * 4) + b'"}'
    for body in deep + [big]:
        await target.send("POST", f"/callbacks/dingtalk/events?{urlencode({'signature': 's', 'timestamp': ts, 'nonce': 'n'})}",
                          data=body, expect_refused=True)
        await target.send("POST", "/callbacks/dingtalk/robot", data=body,
                          headers=_robot_headers(ts, dt.app_secret), expect_refused=True)
        await target.send("POST", "/callbacks/dingtalk/card", data=body,
                          headers=_card_headers(ts, dt.card_callback_secret or dt.app_secret), expect_refused=True)
    # deep nesting inside a correctly encrypted event
    for plain in (deep_json(50_000).decode(), deep_json(50_000, "{").decode()):
        enc = dt.encrypt_event(plain, timestamp=ts)
        query = {"signature": enc["msg_signature"], "timestamp": enc["timeStamp"], "nonce": enc["nonce"]}
        await target.send("POST", f"/callbacks/dingtalk/events?{urlencode(query)}",
                          data=json.dumps({"encrypt": enc["encrypt"]}).encode(), expect_refused=True)
    # stale and future, correctly signed
    for skew_s in (-301, 301, -10 ** 6):
        old = str(now_ms + skew_s * 1000)
        res = await dt.send_event("user_add_org", {"UserId": ["u9"]}, timestamp=old)
        assert res.status in (400, 403), res
        # Robot messages keep DingTalk's own hour (conformance D12): stale means beyond it.
        robot_old = str(now_ms + {-301: -3601, 301: 3601}.get(skew_s, skew_s) * 1000)
        assert (await target.send("POST", "/callbacks/dingtalk/robot",
                                  data=json.dumps(dt.robot_body("u1", "hi")).encode(),
                                  headers=_robot_headers(robot_old, dt.app_secret), expect_refused=True)) in (400, 403)
        body = json.dumps(dt.card_tap_body("track-1", "u1", key="claim:x")).encode()
        assert (await target.send("POST", "/callbacks/dingtalk/card", data=body,
                                  headers=_card_headers(old, dt.card_callback_secret or dt.app_secret),
                                  expect_refused=True)) in (400, 403)
    # a valid event still goes through, and its replay stores nothing
    before = (await target.counts())["inbox"]
    event_id = secrets.token_hex(8)
    first = await dt.send_event("user_add_org", {"UserId": ["u9"]}, event_id=event_id)
    assert first.status == 200 and first.reply == "success"
    second = await dt.send_event("user_add_org", {"UserId": ["u9"]}, event_id=event_id)
    assert second.status == 200
    assert (await target.counts())["inbox"] == before + 1

