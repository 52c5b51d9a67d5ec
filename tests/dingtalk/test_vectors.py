"""The official DingTalk callback vectors (reference/dingtalk.md §3), through the HTTP route."""

from __future__ import annotations

import json

import pytest
from dingtalk.crypto import DingTalkCrypto

from bot.app import create_app
from bot.context import CTX
from bot.platforms.dingtalk.crypto import EventCipher
from tests.conftest import make_settings

V1 = dict(token="123456", aes="4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij", rid="suite4xxxxxxxxxxxxxxx",
          sig="5a65ceeef9aab2d149439f82dc191dd6c5cbe2c0", ts="1445827045067", nonce="nEXhMP4r",
          enc="1a3NBxmCFwkCJvfoQ7WhJHB+iX3qHPsc9JbaDznE1i03peOk1LaOQoRz3+nlyGNhwmwJ3vDMG+OzrHMeiZI7gTRWVdUBmfxjZ8Ej23JVYa9VrYeJ5as7XM/ZpulX8NEQis44w53h1qAgnC3PRzM7Zc/D6Ibr0rgUathB6zRHP8PYrfgnNOS9PhSBdHlegK+AGGanfwjXuQ9+0pZcy0w9lQ==",
          plain={"EventType": "check_create_suite_url", "Random": "LPIdSnlF", "TestSuiteKey": "suite4xxxxxxxxxxxxxxx"})
V2 = dict(token="mryue", aes="Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7", rid="ding6ccabc44d2c8d38b",
          sig="03044561471240d4a14bb09372dfcfd4fd0e40cb", ts="1608001896814", nonce="WL4PK6yA",
          enc="0vJiX6vliEpwG3U45CtXqi+m8PXbQRARJ8p8BbDuD1EMTDf0jKpQ79QS93qEk7XHpP6u+oTTrd15NRPvNvmBKyDCYxxOK+HZeKju4yhELOFchzNukR+t8SB/qk4ROMu3",
          plain={"EventType": "check_url"})
V3 = dict(token="123456", aes="1234567890123456789012345678901234567890123", rid="dingsnotzck6pm5veliw",
          sig="9a95a004dd16f5c307e849b994173f76aa26e5eb", ts="1614767836", nonce="A7Co0cJLMzIDtMMI",
          enc="YvkvaGe4hQxd3VxRmEty0dVlnCOAqwf56xwTRHDHoOURqhalbmBJQk5FNcRk42Gl5T0YQXZNwpwWSm1xAFJ5ZA==",
          plain="success")


@pytest.mark.parametrize("v", [V1, V2, V3], ids=["V1", "V2", "V3"])
def test_cipher_decrypts_official_vectors(v):
    got = EventCipher(v["token"], v["aes"], [v["rid"]]).decrypt(v["sig"], v["ts"], v["nonce"], v["enc"])
    assert got.receive_id == v["rid"]
    expected = v["plain"]
    assert (json.loads(got.plaintext) if isinstance(expected, dict) else got.plaintext) == expected


async def _vector_app(aiohttp_client, engine, clock, v, *, app_key=None, corp_id=None):
    settings = make_settings(server={"replay_window_seconds": 0},
                             dingtalk={"app_key": app_key or v["rid"], "corp_id": corp_id or "", "app_secret": "x",
                                       "token": v["token"], "aes_key": v["aes"], "api_base": "http://127.0.0.1:9",
                                       "oapi_base": "http://127.0.0.1:9"})
    app = create_app(settings, clock=clock, engine=engine, start_workers=False)
    return await aiohttp_client(app), app[CTX]


@pytest.mark.parametrize("spelling", ["signature", "msg_signature"])
@pytest.mark.parametrize("v", [V1, V2], ids=["V1", "V2"])
async def test_check_url_vectors_through_http(aiohttp_client, engine, clock, v, spelling):
    client, ctx = await _vector_app(aiohttp_client, engine, clock, v)
    ts_key = "timestamp" if spelling == "signature" else "timeStamp"
    query = {spelling: v["sig"], ts_key: v["ts"], "nonce": v["nonce"]}
    resp = await client.post("/callbacks/dingtalk/events", params=query, json={"encrypt": v["enc"]})
    assert resp.status == 200
    reply = await resp.json()
    assert set(reply) == {"msg_signature", "timeStamp", "nonce", "encrypt"}
    plain = DingTalkCrypto(v["token"], v["aes"], v["rid"]).decrypt_message(
        {"encrypt": reply["encrypt"]}, reply["msg_signature"], reply["timeStamp"], reply["nonce"])
    assert plain == "success"
    assert await ctx.inbox.counts() == {}  # a URL check is answered, not stored


async def test_v2_with_receive_id_as_corp_id(aiohttp_client, engine, clock):
    """Legacy subscriptions encrypt with the CorpId: app_key differs, corp_id matches."""
    client, _ = await _vector_app(aiohttp_client, engine, clock, V2, app_key="dingotherappkey", corp_id=V2["rid"])
    query = {"signature": V2["sig"], "timestamp": V2["ts"], "nonce": V2["nonce"]}
    resp = await client.post("/callbacks/dingtalk/events", params=query, json={"encrypt": V2["enc"]})
    assert resp.status == 200
    reply = await resp.json()
    assert DingTalkCrypto(V2["token"], V2["aes"], V2["rid"]).decrypt_message(
        {"encrypt": reply["encrypt"]}, reply["msg_signature"], reply["timeStamp"], reply["nonce"]) == "success"


async def test_v2_with_unknown_receive_id_is_refused(aiohttp_client, engine, clock):
    client, ctx = await _vector_app(aiohttp_client, engine, clock, V2, app_key="dingotherappkey", corp_id="dingother")
    query = {"signature": V2["sig"], "timestamp": V2["ts"], "nonce": V2["nonce"]}
    resp = await client.post("/callbacks/dingtalk/events", params=query, json={"encrypt": V2["enc"]})
    assert resp.status == 403
    assert (await resp.json())["error"] == "unknown_receive_id"


async def test_v3_decrypts_through_the_route_and_is_not_an_event(aiohttp_client, engine, clock):
    """V3 is DingTalk's sample of an encrypted "success" (seconds timestamp): the route verifies
    and decrypts it, then refuses it as a body that is not an event, with a 4xx."""
    client, ctx = await _vector_app(aiohttp_client, engine, clock, V3)
    query = {"signature": V3["sig"], "timestamp": V3["ts"], "nonce": V3["nonce"]}
    resp = await client.post("/callbacks/dingtalk/events", params=query, json={"encrypt": V3["enc"]})
    assert resp.status == 400
    assert (await resp.json())["error"] == "malformed_json"
    assert await ctx.inbox.counts() == {}


async def test_vector_is_refused_when_the_replay_window_is_on(aiohttp_client, engine, clock):
    settings = make_settings(server={"replay_window_seconds": 300},
                             dingtalk={"app_key": V2["rid"], "app_secret": "x", "token": V2["token"],
                                       "aes_key": V2["aes"]})
    client = await aiohttp_client(create_app(settings, clock=clock, engine=engine, start_workers=False))
    query = {"signature": V2["sig"], "timestamp": V2["ts"], "nonce": V2["nonce"]}
    resp = await client.post("/callbacks/dingtalk/events", params=query, json={"encrypt": V2["enc"]})
    assert resp.status == 403
    assert (await resp.json())["error"] == "stale_timestamp"
