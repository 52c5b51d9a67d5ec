"""The WeCom callback edge, driven over HTTP as WeCom drives it: official vectors, refusals,
dedupe of re-sent events, and card taps answered inline with a passive reply."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import urlencode

import pytest
from structlog.testing import capture_logs

from bot.api.wecom_callback import WECOM_EDGE
from bot.context import CTX
from bot.events import AgentEntered, CardAction, FriendAdded, TextCommand, UnknownEvent
from bot.platforms.wecom.crypto import signature
from tests.conftest import make_settings
from tests.wecom.conftest import OFFICIAL

HELLO_ENCRYPT = ("RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==")
HELLO_BODY = (f"<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[{HELLO_ENCRYPT}]]>"
              f"</Encrypt><AgentID><![CDATA[218]]></AgentID></xml>")
HELLO_QUERY = dict(msg_signature="477715d11cdb4164915debcba66cb864d751f3e6", timestamp="1409659813",
                   nonce="1372623149")
VERIFY_QUERY = dict(msg_signature="5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", timestamp="1409659589",
                    nonce="263014780",
                    echostr="P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==")


async def official_client(aiohttp_client, engine, clock, *, corp_id: str = OFFICIAL["corp_id"], window: int = 0):
    from bot.app import create_app

    wecom = dict(OFFICIAL, corp_id=corp_id, api_base="http://127.0.0.1:9")
    app = create_app(make_settings(wecom=wecom, server={"replay_window_seconds": window}), clock=clock, engine=engine)
    return await aiohttp_client(app)


async def inbox_rows(cli) -> int:
    return sum((await cli.app[CTX].inbox.counts()).values())


def q(params: dict) -> str:
    return "/callbacks/wecom?" + urlencode(params)


# ---------------------------------------------------------------- official vectors


async def test_official_url_verification(aiohttp_client, engine, clock):
    cli = await official_client(aiohttp_client, engine, clock)
    resp = await cli.get(q(VERIFY_QUERY))
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    assert await resp.read() == b"1616140317555161061"


async def test_official_hello_post_is_stored_and_parsed(aiohttp_client, engine, clock, record):
    seen = record(TextCommand)
    cli = await official_client(aiohttp_client, engine, clock)
    resp = await cli.post(q(HELLO_QUERY), data=HELLO_BODY)
    assert resp.status == 200
    assert await resp.text() == ""
    ctx = cli.app[CTX]
    await ctx.services.processor.drain()
    assert await inbox_rows(cli) == 1
    [event] = seen.events
    assert event == TextCommand(platform="wecom", sender_id="mycreate", text="hello", occurred_at=event.occurred_at,
                                message_id="4561255354251345929")
    assert int(event.occurred_at.timestamp()) == 1409659813


async def test_official_post_resent_is_stored_once(aiohttp_client, engine, clock):
    cli = await official_client(aiohttp_client, engine, clock)
    for _ in range(3):
        assert (await cli.post(q(HELLO_QUERY), data=HELLO_BODY)).status == 200
    assert await inbox_rows(cli) == 1


# ---------------------------------------------------------------- refusals: 4xx, a log line, nothing stored


async def test_tampered_signature_is_refused(aiohttp_client, engine, clock):
    cli = await official_client(aiohttp_client, engine, clock)
    bad = dict(HELLO_QUERY, msg_signature="477716" + HELLO_QUERY["msg_signature"][6:])
    with capture_logs() as logs:
        resp = await cli.post(q(bad), data=HELLO_BODY)
    assert resp.status == 403
    assert await inbox_rows(cli) == 0
    assert any(e["event"] == "wecom.callback_rejected" and e["reason"] == "bad_signature" for e in logs)
    assert (await cli.get(q(dict(VERIFY_QUERY, nonce="1")))).status == 403


async def test_wrong_receive_id_is_refused(aiohttp_client, engine, clock):
    cli = await official_client(aiohttp_client, engine, clock, corp_id="ww_someone_else")
    with capture_logs() as logs:
        resp = await cli.post(q(HELLO_QUERY), data=HELLO_BODY)
    assert resp.status == 403
    assert any(e.get("reason") == "wrong_receive_id" for e in logs)
    assert (await cli.get(q(VERIFY_QUERY))).status == 403
    assert await inbox_rows(cli) == 0


@pytest.mark.parametrize("body", [
    b"<xml><Encrypt>garbage",
    b"",
    b"not xml at all",
    b"<xml><ToUserName>x</ToUserName></xml>",
    b"<other><Encrypt>abc</Encrypt></other>",
    "<xml><Encrypt>\u4e2d</Encrypt>".encode(),
])
async def test_malformed_body_is_refused(aiohttp_client, engine, clock, body):
    cli = await official_client(aiohttp_client, engine, clock)
    resp = await cli.post(q(HELLO_QUERY), data=body)
    assert resp.status == 400
    assert await inbox_rows(cli) == 0


BOMB = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;'
        b'&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b'<xml><Encrypt>&lol3;</Encrypt></xml>')
EXTERNAL = (b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            b'<xml><Encrypt>&xxe;</Encrypt></xml>')
DTD_ONLY = b'<?xml version="1.0"?><!DOCTYPE xml SYSTEM "http://example.invalid/x.dtd"><xml><Encrypt>a</Encrypt></xml>'


@pytest.mark.parametrize("body", [BOMB, EXTERNAL, DTD_ONLY], ids=["entity-bomb", "external-entity", "dtd"])
async def test_dtd_and_entities_are_refused(aiohttp_client, engine, clock, body):
    cli = await official_client(aiohttp_client, engine, clock)
    with capture_logs() as logs:
        resp = await cli.post(q(HELLO_QUERY), data=body)
    assert resp.status == 400
    assert await inbox_rows(cli) == 0
    assert any(e.get("reason") == "malformed_xml" and "forbidden" in e.get("detail", "") for e in logs)


@pytest.mark.parametrize("encrypted", [
    "!!!not-base64!!!",
    base64.b64encode(b"short").decode(),
    base64.b64encode(b"\x00" * 64).decode(),
    base64.b64encode(bytes(range(256)) * 2).decode(),
])
async def test_signed_but_undecryptable_body_is_refused(aiohttp_client, engine, clock, encrypted):
    cli = await official_client(aiohttp_client, engine, clock)
    ts, nonce = "1409659813", "1372623149"
    sig = signature(OFFICIAL["token"], ts, nonce, encrypted)
    body = f"<xml><ToUserName>x</ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    resp = await cli.post(q(dict(msg_signature=sig, timestamp=ts, nonce=nonce)), data=body)
    assert 400 <= resp.status < 500
    assert await inbox_rows(cli) == 0


async def test_stale_timestamp_is_refused(leadbot, sandbox, clock):
    old = int(clock.now().timestamp()) - 301
    from sandbox.wecom import _xml

    plain = _xml(sandbox._event("sys", "change_external_contact", ChangeType="add_external_contact",
                                UserID="zhangsan", ExternalUserID="wmOLD"))
    with capture_logs() as logs:
        result = await sandbox.post_callback(plain, timestamp=old)
    assert result.status == 403
    assert any(e.get("reason") == "stale_timestamp" for e in logs)
    future = await sandbox.post_callback(plain, timestamp=old + 2 * 301 + 10)
    assert future.status == 403
    assert await inbox_rows(leadbot) == 0
    fresh = await sandbox.post_callback(plain, timestamp=old + 2)
    assert fresh.status == 200


async def test_official_vectors_are_stale_with_a_replay_window(aiohttp_client, engine, clock):
    cli = await official_client(aiohttp_client, engine, clock, window=300)
    assert (await cli.get(q(VERIFY_QUERY))).status == 403
    assert (await cli.post(q(HELLO_QUERY), data=HELLO_BODY)).status == 403
    assert await inbox_rows(cli) == 0


async def test_missing_parameters_and_bad_timestamp(aiohttp_client, engine, clock):
    cli = await official_client(aiohttp_client, engine, clock)
    assert (await cli.post("/callbacks/wecom", data=HELLO_BODY)).status == 400
    assert (await cli.get("/callbacks/wecom?msg_signature=a&timestamp=1&nonce=2")).status == 400
    assert (await cli.post(q(dict(HELLO_QUERY, timestamp="12ab")), data=HELLO_BODY)).status == 400


async def test_oversized_body_is_refused(aiohttp_client, engine, clock):
    cli = await official_client(aiohttp_client, engine, clock)
    cap = cli.app[CTX].settings.server.max_body_bytes
    resp = await cli.post(q(HELLO_QUERY), data=b"<xml>" + b"a" * cap + b"</xml>")
    assert resp.status == 413
    assert await inbox_rows(cli) == 0


async def test_no_wecom_section_means_no_route(client):
    assert (await client.get(q(VERIFY_QUERY))).status in (404, 405)
    assert client.app[CTX].services.wecom_client is None


# ---------------------------------------------------------------- events from the simulated platform


async def test_sandbox_url_verification(leadbot, sandbox):
    result = await sandbox.verify_url("echo-1234567890")
    assert result.url_verified


async def test_friend_added_three_times_is_one_row_and_one_effect(leadbot, sandbox, record):
    seen = record(FriendAdded)
    first = await sandbox.send_friend_added("zhangsan", "wmCustomer001", state="campaign-818")
    again = [await sandbox.resend(first) for _ in range(2)]
    assert [r.status for r in [first, *again]] == [200, 200, 200]
    assert all(r.body == "" for r in [first, *again])
    ctx = leadbot.app[CTX]
    await ctx.services.processor.drain()
    assert await inbox_rows(leadbot) == 1
    assert len(seen.events) == 1
    event = seen.events[0]
    assert (event.rep_user_id, event.external_user_id, event.state, event.half) == \
        ("zhangsan", "wmCustomer001", "campaign-818", False)
    assert event.welcome_code.startswith("WC")


async def test_half_added_friend(leadbot, sandbox, record):
    seen = record(FriendAdded)
    await sandbox.send_friend_added("lisi", "wmHalf", half=True, welcome_code=False)
    await leadbot.app[CTX].services.processor.drain()
    [event] = seen.events
    assert event.half and event.welcome_code == ""


async def test_card_event_reaches_a_handler_as_card_action(leadbot, sandbox, record):
    seen = record(CardAction)
    result = await sandbox.send_card_event("zhangsan", "claim:tok123", "lead-42-zhangsan",
                                           selected=[("region", ["east"])])
    assert result.status == 200 and result.body == ""  # the handler returned nothing to show
    [action] = seen.events
    assert action.platform == "wecom"
    assert action.actor_id == "zhangsan"
    assert action.key == "claim:tok123" and action.action == "claim" and action.token == "tok123"
    assert action.card_ref == "lead-42-zhangsan"
    assert action.card_type == "button_interaction"
    assert action.response_code.startswith("RC")
    assert action.selected == (("region", ("east",)),)
    assert await inbox_rows(leadbot) == 1


async def test_card_event_with_several_selected_items(leadbot, sandbox, record):
    seen = record(CardAction)
    await sandbox.send_card_event("lisi", "submit:x", "vote-1", card_type="multiple_interaction",
                                  selected=[("q1", ["a", "b"]), ("q2", ["c"])])
    [action] = seen.events
    assert action.selected == (("q1", ("a", "b")), ("q2", ("c",)))


async def test_card_tap_answered_with_update_button(leadbot, sandbox, record):
    client = leadbot.app[CTX].services.wecom_client
    sent = await client.send_template_card("zhangsan", {
        "card_type": "button_interaction", "task_id": "lead-7-zhangsan", "main_title": {"title": "新线索"},
        "button_list": [{"text": "认领", "style": 1, "key": "claim:t7"}]})
    assert sent.response_code
    seen = record(CardAction)
    seen.result = {"replace_name": "已认领"}
    result = await sandbox.send_card_event("zhangsan", "claim:t7", "lead-7-zhangsan")
    assert result.status == 200
    assert result.reply["MsgType"] == "update_button"
    assert result.reply["Button"]["ReplaceName"] == "已认领"
    assert result.reply["ToUserName"] == "zhangsan"
    # (a refusal notice for the fake "t7" token may arrive too: only the card matters here)
    [card] = [m for m in sandbox.messages_for("zhangsan") if m["msgtype"] == "template_card"]
    assert card["replace_name"] == "已认领"


async def test_card_tap_answered_with_whole_card(leadbot, sandbox, record):
    seen = record(CardAction)
    seen.result = {"template_card": {"card_type": "text_notice", "task_id": "ignored",
                                     "main_title": {"title": "已被 张三 认领"},
                                     "horizontal_content_list": [{"keyname": "客户", "value": "王小明"}],
                                     "card_action": {"type": 1, "url": "https://example.invalid/a/x"}}}
    result = await sandbox.send_card_event("zhangsan", "claim:t8", "lead-8")
    assert result.reply["MsgType"] == "update_template_card"
    card = result.reply["TemplateCard"]
    assert card["CardType"] == "text_notice"
    assert card["MainTitle"]["Title"] == "已被 张三 认领"
    assert card["HorizontalContentList"]["KeyName"] == "客户"
    assert card["CardAction"]["Type"] == "1"
    assert "TaskId" not in card


async def test_slow_card_handler_gets_empty_answer_and_still_runs(leadbot, sandbox, record):
    seen = record(CardAction)
    seen.result = {"replace_name": "too late"}
    seen.delay = 0.05
    leadbot.app[WECOM_EDGE].inline_timeout = 0.01
    result = await sandbox.send_card_event("wangwu", "claim:slow", "lead-9")
    assert result.status == 200 and result.body == ""
    counts: dict = {}
    for _ in range(300):  # the handler finishes in the background; its row is marked done after it
        counts = await leadbot.app[CTX].inbox.counts()
        if seen.events and counts.get("done") == 1:
            break
        await asyncio.sleep(0.01)
    assert len(seen.events) == 1
    assert counts.get("done") == 1


async def test_card_event_resent_has_one_effect(leadbot, sandbox, record):
    seen = record(CardAction)
    first = await sandbox.send_card_event("lisi", "claim:dup", "lead-10")
    await sandbox.resend(first)
    await sandbox.resend(first)
    await leadbot.app[CTX].services.processor.drain()
    assert len(seen.events) == 1


async def test_text_enter_agent_and_unknown_events(leadbot, sandbox, record):
    texts, entered, unknown = record(TextCommand), record(AgentEntered), record(UnknownEvent)
    await sandbox.send_text("lisi", " 我的线索 ", msgid="7000000000000000001")
    await sandbox.send_enter_agent("lisi")
    from sandbox.wecom import _xml

    odd = await sandbox.post_callback(_xml(sandbox._event("lisi", "click", EventKey="menu-1")))
    image = await sandbox.post_callback(_xml({"ToUserName": sandbox.corp_id, "FromUserName": "lisi",
                                              "CreateTime": 1, "MsgType": "image", "PicUrl": "u",
                                              "MediaId": "m", "MsgId": "99"}))
    assert odd.status == 200 and image.status == 200
    await leadbot.app[CTX].services.processor.drain()
    assert [t.text for t in texts.events] == ["我的线索"]
    assert texts.events[0].message_id == "7000000000000000001"
    assert [e.user_id for e in entered.events] == ["lisi"]
    assert sorted(u.kind for u in unknown.events) == ["event:click", "msg:image"]
    assert (await leadbot.app[CTX].inbox.counts()) == {"done": 4}


async def test_event_without_create_time_is_refused(leadbot, sandbox):
    result = await sandbox.post_callback("<xml><MsgType>event</MsgType><Event>x</Event></xml>")
    assert result.status == 400
    assert await inbox_rows(leadbot) == 0
