"""Bytes on the wire that no well-behaved client sends: invalid UTF-8 (which aiohttp hands over
as lone surrogates) in headers, query strings and charsets, on every route."""

from __future__ import annotations

import asyncio

from tests.fuzz.conftest import Target


async def _raw(target: Target, request: bytes) -> int:
    """Sends one raw request, returns the status."""
    host, port = target.client.server.host, target.client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 10)
        return int(line.split()[1])
    finally:
        writer.close()


async def test_invalid_utf8_in_headers_and_query(target) -> None:
    ts = str(int(target.clock.now().timestamp() * 1000)).encode()
    body = b'{"msgId":"m1"}'
    cases = [
        b"POST /callbacks/dingtalk/robot HTTP/1.1\r\nHost: x\r\ntimestamp: " + ts + b"\r\nsign: \xff\xfe\xed\xa0\x80\r\n",
        b"POST /callbacks/dingtalk/robot HTTP/1.1\r\nHost: x\r\ntimestamp: \xff" + ts + b"\r\nsign: abc\r\n",
        b"POST /callbacks/dingtalk/card HTTP/1.1\r\nHost: x\r\nx-ddpaas-signature-timestamp: " + ts
        + b"\r\nx-ddpaas-signature: \xc3\x28\xed\xa0\x80\r\n",
        b"POST /callbacks/dingtalk/events?signature=%ff%ed%a0%80&timestamp=" + ts + b"&nonce=%ff HTTP/1.1\r\nHost: x\r\n",
        b"POST /callbacks/wecom?msg_signature=%ed%a0%80&timestamp=" + ts[:-3] + b"&nonce=%ff%fe HTTP/1.1\r\nHost: x\r\n",
        b"GET /callbacks/wecom?msg_signature=%ed%a0%80&timestamp=" + ts[:-3] + b"&nonce=%ff&echostr=%ed%a0%80 HTTP/1.1\r\nHost: x\r\n",
        b"POST /api/v1/leads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xed\xa0\x80\r\n",
        b"POST /api/v1/leads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-intake-token\r\n"
        b"Idempotency-Key: \xff\xed\xa0\x80\r\nContent-Type: application/json; charset=\xff\r\n",
        b"POST /api/v1/leads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-intake-token\r\n"
        b"Idempotency-Key: \xff\xed\xa0\x80\r\nContent-Type: application/json\r\n",
        b"POST /api/v1/leads?x=%ff HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-intake-token\r\n"
        b"Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n",
    ]
    before = await target.counts()
    for head in cases:
        status = await _raw(target, head + b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        assert status < 500, (head, status)
    after = await target.counts()
    new_leads = after["leads"] - before["leads"]
    assert new_leads <= 2  # only the two intake requests with a valid token
    assert after["inbox"] - before["inbox"] == new_leads  # each accepted lead queues its routing, nothing else


async def test_lone_surrogates_and_nul_in_json_values(target: Target) -> None:
    """JSON escapes decode to text no database column accepts (\\ud800, \\u0000): stored safely or
    refused, never a 5xx, and a retry of the same event is still a no-op."""
    import json

    from sandbox.dingtalk import hmac_b64
    from tests.conftest import AUTH

    dt = target.dingtalk
    nasty = "\ud800x\u0000y\udfff"
    ts = str(int(target.clock.now().timestamp() * 1000))
    robot = dict(dt.robot_body("u1", nasty), msgId=nasty, conversationId=nasty, senderStaffId=nasty)
    card = dt.card_tap_body(nasty, nasty, key="claim:" + nasty)
    event = dt.event_plaintext("user_add_org", {"UserId": [nasty]}, event_id=nasty)
    for _ in range(2):  # the second round is the platform's retry
        robot_headers = {"Content-Type": "application/json", "timestamp": ts,
                         "sign": hmac_b64(dt.app_secret, f"{ts}\n{dt.app_secret}")}
        await target.send("POST", "/callbacks/dingtalk/robot", data=json.dumps(robot).encode(), headers=robot_headers)
        secret = dt.card_callback_secret or dt.app_secret
        await target.send("POST", "/callbacks/dingtalk/card", data=json.dumps(card).encode(),
                          headers={"Content-Type": "application/json", "x-ddpaas-signature-timestamp": ts,
                                   "x-ddpaas-signature": hmac_b64(secret, ts)})
        enc = dt.encrypt_event(json.dumps(event), timestamp=ts)
        from urllib.parse import urlencode

        query = {"signature": enc["msg_signature"], "timestamp": enc["timeStamp"], "nonce": enc["nonce"]}
        await target.send("POST", f"/callbacks/dingtalk/events?{urlencode(query)}",
                          data=json.dumps({"encrypt": enc["encrypt"]}).encode())
        if _ == 0:
            after_first = await target.counts()
    assert (await target.counts())["inbox"] == after_first["inbox"]
    lead = {k: nasty for k in ("name", "phone", "email", "company", "note", "channel", "source_ref", "amount")}
    lead["weird_extra"] = {nasty: [nasty]}
    for _ in range(2):
        await target.send("POST", "/api/v1/leads", data=json.dumps(lead).encode(),
                          headers={**AUTH, "Content-Type": "application/json", "Idempotency-Key": "nasty-1"})
