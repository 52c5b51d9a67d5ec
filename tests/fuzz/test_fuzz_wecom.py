"""Hostile input against GET|POST /callbacks/wecom: never a 500 (or a 503 while the store is up),
the server keeps answering, and nothing is stored from a refused request."""

from __future__ import annotations

import base64
import secrets
from typing import Any
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st
from wechatpy.crypto import _get_signature
from wechatpy.enterprise.crypto import PrpCrypto

from tests.fuzz.conftest import FUZZ, MAX_BODY, WECOM
from tests.fuzz.strategies import NASTY_TEXT, deep_xml, hostile_xml, timestamps, xml_documents

NOW_FIELDS = ("MsgType", "Event", "ChangeType", "UserID", "ExternalUserID", "EventKey", "TaskId", "MsgId",
              "FromUserName", "CreateTime", "Content", "ResponseCode", "CardType", "AgentID", "WelcomeCode")


def _key() -> bytes:
    return base64.b64decode(WECOM["encoding_aes_key"] + "=")


def _sig(timestamp: str, nonce: str, encrypted: str) -> str:
    return _get_signature(WECOM["token"], timestamp, nonce, encrypted)


def encrypt_inner(raw: bytes | str, timestamp: str, nonce: str = "", receive_id: str = "") -> tuple[dict, bytes]:
    """A correctly signed envelope around any plaintext bytes (the inner XML is what is fuzzed)."""
    nonce = nonce or secrets.token_hex(5)
    encrypted = PrpCrypto(_key()).encrypt(raw, receive_id or WECOM["corp_id"]).decode()
    body = f"<xml><ToUserName><![CDATA[{WECOM['corp_id']}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]>" \
           f"</Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>"
    return {"msg_signature": _sig(timestamp, nonce, encrypted), "timestamp": timestamp, "nonce": nonce}, body.encode()


def _now(target: Any) -> int:
    return int(target.clock.now().timestamp())


async def _still_serving(target: Any) -> None:
    """A valid callback after the storm is accepted and stored: the server is alive and sane."""
    before = (await target.counts())["inbox"]
    result = await target.wecom.send_text("user0", f"still alive {secrets.token_hex(4)}")
    assert result.status == 200, result
    assert (await target.counts())["inbox"] == before + 1


@FUZZ
@given(data=st.data())
async def test_post_with_hostile_envelope(target, data) -> None:
    """The outer envelope is garbage; the signature is random, or right for whatever <Encrypt> holds."""
    body = data.draw(hostile_xml(), "body")
    ts = data.draw(timestamps(_now(target)), "timestamp")
    nonce = data.draw(st.text(max_size=12), "nonce")
    sig = data.draw(st.one_of(st.text(max_size=50), st.just(_sig(ts, nonce, "x"))), "signature")
    ctype = data.draw(st.sampled_from(["text/xml", "application/xml; charset=gbk", "application/json", ""]))
    query = urlencode({"msg_signature": sig, "timestamp": ts, "nonce": nonce})
    await target.send("POST", f"/callbacks/wecom?{query}", data=body, headers={"Content-Type": ctype},
                      expect_refused=True)


@FUZZ
@given(data=st.data())
async def test_post_with_hostile_inner_xml(target, data) -> None:
    """Signed and encrypted correctly, but the decrypted XML is hostile or nonsense."""
    inner = data.draw(st.one_of(
        hostile_xml(), xml_documents(), st.integers(17, 400).map(deep_xml),
        st.lists(st.tuples(st.sampled_from(NOW_FIELDS), NASTY_TEXT), max_size=10).map(
            lambda f: ("<xml>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in f) + "</xml>").encode(
                "utf-8", errors="replace")),
    ), "inner")
    receive_id = data.draw(st.sampled_from([WECOM["corp_id"], WECOM["corp_id"], "wrong-corp", ""]))
    query, body = encrypt_inner(inner, str(_now(target)), receive_id=receive_id)
    await target.send("POST", f"/callbacks/wecom?{urlencode(query)}", data=body,
                      headers={"Content-Type": "text/xml"})


@FUZZ
@given(data=st.data())
async def test_post_valid_event_with_fuzzed_fields_and_timestamps(target, data) -> None:
    """A real event shape with fuzzed values, at fresh or stale timestamps; a replay stores nothing."""
    fields = {"ToUserName": WECOM["corp_id"], "FromUserName": data.draw(NASTY_TEXT),
              "CreateTime": str(_now(target)), "MsgType": data.draw(st.sampled_from(["event", "text", "image", ""])),
              "Event": data.draw(st.sampled_from(["change_external_contact", "template_card_event", "enter_agent",
                                                  "unknown", ""])),
              "ChangeType": data.draw(st.sampled_from(["add_external_contact", "del_follow_user", "edit", ""])),
              "UserID": data.draw(NASTY_TEXT), "ExternalUserID": data.draw(NASTY_TEXT),
              "EventKey": data.draw(st.one_of(NASTY_TEXT, st.sampled_from(["claim:", "claim:xyz", "pass:a.b"]))),
              "TaskId": data.draw(NASTY_TEXT), "MsgId": data.draw(st.one_of(st.just(""), NASTY_TEXT)),
              "Content": data.draw(NASTY_TEXT)}
    xml = "<xml>" + "".join(f"<{k}><![CDATA[{v.replace(']]>', '')}]]></{k}>" for k, v in fields.items()) + "</xml>"
    ts = data.draw(timestamps(_now(target)), "timestamp")
    query, body = encrypt_inner(xml.encode("utf-8", errors="replace"), ts)
    status = await target.send("POST", f"/callbacks/wecom?{urlencode(query)}", data=body,
                               headers={"Content-Type": "text/xml"})
    if status == 200:
        # The platform's retry: the same event, freshly encrypted: acknowledged, nothing new stored.
        before = await target.counts()
        query, body = encrypt_inner(xml.encode("utf-8", errors="replace"), ts)
        again = await target.send("POST", f"/callbacks/wecom?{urlencode(query)}", data=body)
        assert again == 200
        assert (await target.counts())["inbox"] == before["inbox"]


@FUZZ
@given(data=st.data())
async def test_get_url_check_with_hostile_query(target, data) -> None:
    ts = data.draw(timestamps(_now(target)), "timestamp")
    nonce = data.draw(st.text(max_size=12), "nonce")
    kind = data.draw(st.sampled_from(["text", "base64", "wrong_corp", "right_corp"]), "echostr kind")
    if kind == "text":
        echostr = data.draw(st.text(max_size=200), "echostr")
    elif kind == "base64":
        echostr = base64.b64encode(data.draw(st.binary(max_size=120), "echostr")).decode()
    else:
        # (encrypted outside the strategy: wechatpy pads with the random module)
        plain = data.draw(st.binary(max_size=64), "echostr")
        echostr = PrpCrypto(_key()).encrypt(plain, "wrong-corp" if kind == "wrong_corp" else WECOM["corp_id"]).decode()
    signed = data.draw(st.booleans(), "signed")
    sig = _sig(ts, nonce, echostr) if signed else data.draw(st.text(max_size=50))
    params = {"msg_signature": sig, "timestamp": ts, "nonce": nonce, "echostr": echostr}
    dropped = data.draw(st.sampled_from([None, "msg_signature", "timestamp", "nonce", "echostr"]))
    if dropped:
        params.pop(dropped)
    await target.send("GET", f"/callbacks/wecom?{urlencode(params)}")


async def test_attacks_and_limits_are_refused_and_the_server_keeps_serving(target) -> None:
    """The named attacks, each once, deterministically; then a valid callback still works."""
    from tests.fuzz.strategies import XML_ATTACKS

    ts = str(_now(target))
    for attack in XML_ATTACKS + [deep_xml(50_000)]:
        # as the envelope
        await target.send("POST", f"/callbacks/wecom?{urlencode({'msg_signature': 'x', 'timestamp': ts, 'nonce': 'n'})}",
                          data=attack, expect_refused=True)
        # and inside a correctly signed envelope
        query, body = encrypt_inner(attack, ts)
        await target.send("POST", f"/callbacks/wecom?{urlencode(query)}", data=body, expect_refused=True)
    # oversize, with and without a Content-Length
    big = b"<xml><Encrypt>" + b"A" * (MAX_BODY * 4) + b"</Encrypt></xml>"
    q = urlencode({"msg_signature": "x", "timestamp": ts, "nonce": "n"})
    assert await target.send("POST", f"/callbacks/wecom?{q}", data=big, expect_refused=True) == 413

    async def chunks():
        for _ in range(8):
            yield b"A" * MAX_BODY

    assert await target.send("POST", f"/callbacks/wecom?{q}", data=chunks(), expect_refused=True) == 413
    # a stale and a future timestamp, correctly signed: refused even though everything else is right
    plain = ("<xml><ToUserName>c</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
             "<MsgType>text</MsgType><Content>hi</Content><MsgId>42</MsgId></xml>")
    for skew in (-301, 301, -10 ** 6):
        query, body = encrypt_inner(plain, str(_now(target) + skew))
        assert await target.send("POST", f"/callbacks/wecom?{urlencode(query)}", data=body,
                                 expect_refused=True) == 403
    await _still_serving(target)
