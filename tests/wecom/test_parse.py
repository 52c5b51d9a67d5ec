"""Unit tests: payload -> neutral event, dedupe keys, safe XML, passive reply XML, errcodes."""

from __future__ import annotations

import pytest
import xmltodict

from bot.events import AgentEntered, CardAction, ContactChanged, FriendAdded, TextCommand, UnknownEvent
from bot.platforms.wecom.errors import ErrorKind, WeComError, classify, permanent, retryable_throttle, retryable_token
from bot.platforms.wecom.parse import MissingField, dedupe_key, kind_of, parse_event
from bot.platforms.wecom.reply import card_update_from, passive_reply_xml, xml_name
from bot.platforms.wecom.safexml import UnsafeXml, parse_xml


def contact(change: str, **extra: str) -> dict:
    return {"ToUserName": "ww1", "FromUserName": "sys", "CreateTime": "1700000000", "MsgType": "event",
            "Event": "change_external_contact", "ChangeType": change, "UserID": "zhangsan",
            "ExternalUserID": "wmX", **extra}


@pytest.mark.parametrize("change", ["add_external_contact", "add_half_external_contact"])
def test_friend_added_types(change):
    event = parse_event(contact(change, State="s1", WelcomeCode="W1"))
    assert isinstance(event, FriendAdded)
    assert (event.rep_user_id, event.external_user_id, event.state, event.welcome_code) == ("zhangsan", "wmX", "s1", "W1")
    assert event.half == (change == "add_half_external_contact")
    assert event.occurred_at.timestamp() == 1700000000


@pytest.mark.parametrize("change,extra", [
    ("edit_external_contact", {}),
    ("del_external_contact", {"Source": "DELETE_BY_TRANSFER"}),
    ("del_follow_user", {}),
    ("transfer_fail", {"FailReason": "customer_refused"}),
])
def test_contact_changed_types(change, extra):
    event = parse_event(contact(change, **extra))
    assert isinstance(event, ContactChanged)
    assert event.change_type == change
    assert event.source == extra.get("Source", "")
    assert event.fail_reason == extra.get("FailReason", "")


def test_unknown_change_type_is_unknown_event():
    event = parse_event(contact("something_new"))
    assert isinstance(event, UnknownEvent)
    assert event.kind == "event:change_external_contact:something_new"


def card_payload(selected) -> dict:
    p = {"ToUserName": "ww1", "FromUserName": "lisi", "CreateTime": "1700000001", "MsgType": "event",
         "Event": "template_card_event", "EventKey": "advance:abc", "TaskId": "t-1",
         "CardType": "vote_interaction", "ResponseCode": "RC1", "AgentID": "1000002"}
    if selected is not None:
        p["SelectedItems"] = selected
    return p


def test_card_action_single_and_several_selected_items():
    single = parse_event(card_payload({"SelectedItem": {"QuestionKey": "q", "OptionIds": {"OptionId": "o1"}}}))
    several = parse_event(card_payload({"SelectedItem": [
        {"QuestionKey": "q1", "OptionIds": {"OptionId": ["a", "b"]}},
        {"QuestionKey": "q2", "OptionIds": {"OptionId": "c"}}]}))
    none = parse_event(card_payload(None))
    assert isinstance(single, CardAction)
    assert single.selected == (("q", ("o1",)),)
    assert several.selected == (("q1", ("a", "b")), ("q2", ("c",)))
    assert none.selected == ()
    assert (single.key, single.action, single.card_ref, single.response_code, single.card_type) == \
        ("advance:abc", "advance", "t-1", "RC1", "vote_interaction")
    assert single.params["agent_id"] == "1000002"


def test_card_payload_from_real_xml_shape():
    xml = ("<xml><ToUserName>ww1</ToUserName><FromUserName>lisi</FromUserName><CreateTime>1</CreateTime>"
           "<MsgType>event</MsgType><Event>template_card_event</Event><EventKey>k</EventKey><TaskId>t</TaskId>"
           "<CardType>multiple_interaction</CardType><ResponseCode>rc</ResponseCode><SelectedItems>"
           "<SelectedItem><QuestionKey>q1</QuestionKey><OptionIds><OptionId>a</OptionId><OptionId>b</OptionId>"
           "</OptionIds></SelectedItem></SelectedItems></xml>")
    ours = parse_xml(xml)
    theirs = xmltodict.parse(xml)["xml"]  # the shape wechatpy hands over
    assert parse_event(ours).selected == parse_event(theirs).selected == (("q1", ("a", "b")),)


def test_text_and_enter_agent():
    text = parse_event({"FromUserName": "u", "CreateTime": "5", "MsgType": "text", "Content": " 帮助 ", "MsgId": "9"})
    assert text == TextCommand(platform="wecom", sender_id="u", text="帮助", occurred_at=text.occurred_at, message_id="9")
    entered = parse_event({"FromUserName": "u", "CreateTime": "5", "MsgType": "event", "Event": "enter_agent"})
    assert isinstance(entered, AgentEntered) and entered.user_id == "u"


def test_garbage_payload_is_unknown_not_an_error():
    event = parse_event({"CreateTime": "not-a-number", "Weird": {"x": "y"}})
    assert isinstance(event, UnknownEvent) and event.kind == "msg:unknown"
    assert event.occurred_at.timestamp() == 0


def test_dedupe_keys():
    assert dedupe_key({"MsgType": "text", "CreateTime": "1", "MsgId": "42"}) == "wecom:msg:42"
    a = dedupe_key(contact("add_external_contact"))
    b = dedupe_key(contact("add_external_contact", ExternalUserID="wmY"))
    c = dedupe_key(contact("del_follow_user"))
    assert len({a, b, c}) == 3 and a.startswith("wecom:change_external_contact:add_external_contact:zhangsan:wmX:")
    tap = card_payload(None)
    assert dedupe_key(tap) != dedupe_key(dict(tap, EventKey="pass:abc"))
    assert dedupe_key(tap) != dedupe_key(dict(tap, FromUserName="wangwu"))
    assert dedupe_key(tap) == dedupe_key(dict(tap, ResponseCode="another"))  # a retry is the same tap
    enter = {"FromUserName": "u", "CreateTime": "5", "MsgType": "event", "Event": "enter_agent"}
    assert dedupe_key(enter) == "wecom:evt:u:5:enter_agent"
    with pytest.raises(MissingField):
        dedupe_key({"MsgType": "event"})
    assert kind_of(contact("transfer_fail")) == "event:change_external_contact:transfer_fail"


def test_safe_xml_refuses_dtds_and_accepts_cdata():
    assert parse_xml("<xml><A><![CDATA[x<y]]></A><B>1</B><B>2</B></xml>") == {"A": "x<y", "B": ["1", "2"]}
    for bad in ('<!DOCTYPE x [<!ENTITY a "b">]><xml><A>&a;</A></xml>', "<xml><A></xml>", "<root/>",
                "<xml>" + "<a>" * 40 + "</a>" * 40 + "</xml>"):
        with pytest.raises(UnsafeXml):
            parse_xml(bad)


def test_passive_reply_xml_names_and_shapes():
    assert [xml_name(k) for k in ("icon_url", "keyname", "selected_id", "checkbox", "is_checked")] == \
        ["IconUrl", "KeyName", "SelectedId", "CheckBox", "IsChecked"]
    xml = passive_reply_xml({"template_card": {"card_type": "button_interaction", "button_list": [
        {"text": "a]]>b", "style": 1, "key": "k1"}, {"text": "c", "style": 2, "key": "k2"}], "replace_text": "已处理",
        "checkbox": {"disable": True}}}, to_user="u", corp_id="ww", create_time=7)
    parsed = xmltodict.parse(xml)["xml"]
    card = parsed["TemplateCard"]
    assert [b["Text"] for b in card["ButtonList"]] == ["a]]>b", "c"]
    assert card["CheckBox"]["Disable"] == "true"
    assert parsed["FromUserName"] == "ww" and parsed["CreateTime"] == "7"


def test_card_update_from_handler_results():
    class Rendered:
        def tap_reply(self):
            return {"replace_name": "已认领"}

    assert card_update_from(None) is None and card_update_from(True) is None
    assert card_update_from({"replace_name": "x"}) == {"replace_name": "x"}
    assert card_update_from({"wecom": {"template_card": {"card_type": "t"}}}) == {"template_card": {"card_type": "t"}}
    assert card_update_from(Rendered()) == {"replace_name": "已认领"}
    assert card_update_from({"something": "else"}) is None


def test_errcode_classification():
    assert all(retryable_token(c) for c in (40014, 41001, 42001))
    assert all(retryable_throttle(c) for c in (45009, 45033, -1))
    assert all(permanent(c) for c in (81013, 93000, 84061, 41051, 40001, 12345))
    assert classify(None) is ErrorKind.TRANSIENT
    err = WeComError(81013, "all touser invalid", api="message/send")
    assert err.permanent and not err.retryable and err.kind == "permanent"
    assert "81013" in str(err)


def test_transport_error_messages_never_carry_credentials():
    from bot.platforms.wecom.client import _SECRET_QUERY_RE

    text = "ClientResponseError: 502, url='http://h/cgi-bin/message/send?access_token=SECRET1&x=1' key=ROBOT corpsecret=S"
    scrubbed = _SECRET_QUERY_RE.sub(r"\1=***", text)
    assert "SECRET1" not in scrubbed and "ROBOT" not in scrubbed and "=S" not in scrubbed and "x=1" in scrubbed
