"""DingTalk: string-only card params within 1 KB, per-user buttons, work-notice limits."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cards import (
    Button,
    Card,
    Field,
    build_lead_card,
    render_dingtalk_actioncard,
    render_dingtalk_callback_reply,
    render_dingtalk_card,
    render_dingtalk_markdown_msg,
    render_dingtalk_robot_actioncard,
    render_dingtalk_robot_markdown,
    render_dingtalk_text,
)
from bot.cards.text_limits import compact_json, utf8_len
from tests.cards.samples import LINK, NOW, lead_view

LONG_ZH = "杭州市西湖区文三路阿里巴巴数字经济产业园区客户成功中心华东大区" * 20


def _params_ok(params: dict) -> None:
    for key, value in params.items():
        assert isinstance(key, str) and utf8_len(key) <= 100
        assert isinstance(value, str), key
        assert utf8_len(value) <= 1024, key
    for key in ("badges", "fields", "buttons"):
        if key in params:
            assert isinstance(json.loads(params[key]), list)


def _card(**overrides) -> Card:
    base = dict(kind="lead", title="新线索：" + LONG_ZH, subtitle=LONG_ZH,
                fields=tuple(Field(LONG_ZH[:30], LONG_ZH, alert=True) for _ in range(12)),
                badges=(LONG_ZH,) * 5,
                buttons=(Button(key="claim:" + "k" * 300, text="认领"),
                         Button(key="pass:" + "p" * 300, text="放弃"),
                         Button(key="snooze:" + "s" * 300, text="稍后提醒")),
                link=LINK, card_ref="lead-1-dt", footer=LONG_ZH, body=LONG_ZH)
    base.update(overrides)
    return Card(**base)


def test_card_params_are_strings_within_one_kilobyte_even_for_huge_input() -> None:
    body = render_dingtalk_card(_card())
    assert body["outTrackId"] == "lead-1-dt"
    _params_ok(body["cardData"]["cardParamMap"])
    buttons = json.loads(body["cardData"]["cardParamMap"]["buttons"])
    assert buttons and all(b["key"].startswith(("claim:", "pass:", "snooze:")) for b in buttons)
    assert all(len(b["key"]) > 300 for b in buttons)  # keys are dropped, never cut


def test_buttons_are_private_per_recipient() -> None:
    card = build_lead_card(lead_view(), now=NOW, buttons={"claim": "claim:shared"}, link=LINK,
                           card_ref="lead-1024-1")
    body = render_dingtalk_card(card, {"u1": (Button(key="claim:for-u1", text="认领"),),
                                       "u2": (Button(key="claim:for-u2", text="认领"),)})
    shared = body["cardData"]["cardParamMap"]
    assert json.loads(shared["buttons"]) == [] and shared["has_buttons"] == "false"
    for uid in ("u1", "u2"):
        private = body["privateData"][uid]["cardParamMap"]
        _params_ok(private)
        assert json.loads(private["buttons"])[0]["key"] == f"claim:for-{uid}"
        assert private["has_buttons"] == "true"
    listed = render_dingtalk_card(card, ["u3"])
    assert json.loads(listed["privateData"]["u3"]["cardParamMap"]["buttons"])[0]["key"] == "claim:shared"
    everyone = render_dingtalk_card(card)
    assert "privateData" not in everyone
    assert json.loads(everyone["cardData"]["cardParamMap"]["buttons"])[0]["key"] == "claim:shared"


def test_a_recipient_can_get_a_whole_private_view() -> None:
    others = build_lead_card(lead_view(), now=NOW, link=LINK, card_ref="lead-1024-1")
    mine = build_lead_card(lead_view(), now=NOW, link=LINK, card_ref="lead-1024-1",
                           claimed_by_viewer=True)
    body = render_dingtalk_card(others, {"owner": mine})
    assert "13812345678" not in json.dumps(body["cardData"], ensure_ascii=False)
    assert "13812345678" in body["privateData"]["owner"]["cardParamMap"]["subtitle"]
    reply = render_dingtalk_callback_reply(others, ())
    assert json.loads(reply["userPrivateData"]["cardParamMap"]["buttons"]) == []
    _params_ok(reply["cardData"]["cardParamMap"])


def test_each_users_private_data_is_only_what_differs_and_within_one_kilobyte_as_sent() -> None:
    """D11: privateData per user <= 1 KB, counted as the UTF-8 bytes of the compact JSON entry
    that is sent (escaped quotes of the buttons list included); keys <= 100 B, values <= 1 KB."""
    huge = _card(buttons=tuple(Button(key=f"claim:{i}:" + "k" * 150, text="认领") for i in range(8)))
    mine = _card(title="你已认领：" + LONG_ZH, subtitle="华为 · 13812345678", buttons=huge.buttons)
    body = render_dingtalk_card(huge, {"u1": huge.buttons, "owner": mine})
    shared = body["cardData"]["cardParamMap"]
    for uid, entry in body["privateData"].items():
        private = entry["cardParamMap"]
        _params_ok(private)
        assert utf8_len(compact_json(entry)) <= 1024, uid
        assert json.loads(private["buttons"]), uid  # some buttons always fit; the last ones go first
        assert all(k in ("buttons", "has_buttons") or private[k] != shared.get(k) for k in private)
    assert "13812345678" in body["privateData"]["owner"]["cardParamMap"]["subtitle"]
    reply = render_dingtalk_callback_reply(huge, mine)
    assert utf8_len(compact_json(reply["userPrivateData"])) <= 1024
    assert reply["cardUpdateOptions"]["updatePrivateDataByKey"] is False  # the overlay is whole


def test_private_buttons_are_sent_even_when_they_equal_the_shared_ones() -> None:
    """An update must replace a user's old private buttons (a claim button after the claim)."""
    card = _card(buttons=(Button(key="", text="详情", url=LINK),))
    body = render_dingtalk_card(card, {"u1": card})
    assert set(body["privateData"]["u1"]["cardParamMap"]) == {"buttons", "has_buttons"}


def test_interactive_card_needs_an_out_track_id() -> None:
    with pytest.raises(ValueError):
        render_dingtalk_card(_card(card_ref=""))


def test_work_notice_action_card_limits() -> None:
    msg = render_dingtalk_actioncard(_card())
    ac = msg["action_card"]
    assert msg["msgtype"] == "action_card"
    assert len(ac["title"]) <= 64
    assert ac["single_url"] == LINK and len(ac["single_title"]) <= 20
    assert utf8_len(compact_json(msg)) <= 2048
    assert "\n\n" in ac["markdown"] and "|" not in ac["markdown"]


def test_work_notice_url_buttons_become_a_button_list() -> None:
    links = tuple(Button(key="", text=f"操作{i}" + "很长" * 20, url=f"{LINK}?b={i}") for i in range(4))
    msg = render_dingtalk_actioncard(_card(buttons=links))
    ac = msg["action_card"]
    assert ac["btn_orientation"] == "0"
    assert 1 <= len(ac["btn_json_list"]) <= 4
    assert len(compact_json(ac["btn_json_list"])) <= 1000
    assert all(len(b["title"]) <= 20 and b["action_url"].startswith(LINK) for b in ac["btn_json_list"])
    assert utf8_len(compact_json(msg)) <= 2048


def test_no_link_falls_back_to_markdown() -> None:
    msg = render_dingtalk_actioncard(_card(link="", buttons=()))
    assert msg["msgtype"] == "markdown" and utf8_len(compact_json(msg)) <= 2048


def test_robot_messages_use_msg_key_and_json_string_params() -> None:
    one = render_dingtalk_robot_actioncard(_card())
    assert one["msgKey"] == "sampleActionCard"
    param = json.loads(one["msgParam"])
    assert param["singleURL"] == LINK and len(param["title"]) <= 64
    links = tuple(Button(key="", text=f"链接{i}", url=f"{LINK}?b={i}") for i in range(7))
    many = render_dingtalk_robot_actioncard(_card(buttons=links))
    assert many["msgKey"] == "sampleActionCard5"
    assert json.loads(many["msgParam"])["actionURL5"] == f"{LINK}?b=4"
    md = render_dingtalk_robot_markdown(_card())
    assert md["msgKey"] == "sampleMarkdown" and set(json.loads(md["msgParam"])) == {"title", "text"}


def test_markdown_escapes_html_and_markup() -> None:
    card = Card(kind="lead", title="新线索：<img src=x>", subtitle="**粗** [x](y)", link=LINK)
    text = render_dingtalk_markdown_msg(card)["markdown"]["text"]
    assert "<img" not in text and "**粗**" not in text and "[x](y)" not in text
    assert text.startswith("### 新线索：＜img")


def test_text_msg_fits_the_work_notice_limit() -> None:
    msg = render_dingtalk_text(_card())
    assert utf8_len(compact_json(msg)) <= 2048 and LINK in msg["text"]["content"]


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=3000), label=st.text(max_size=200))
def test_any_text_gives_string_params_within_limits(text: str, label: str) -> None:
    card = Card(kind="lead", title=text or "t", subtitle=text, fields=(Field(label, text),) * 5,
                badges=(text,) if text else (), link=LINK, card_ref="r", footer=text, body=text,
                buttons=(Button(key="claim:tok", text=label or "认领"),))
    _params_ok(render_dingtalk_card(card)["cardData"]["cardParamMap"])
    assert utf8_len(compact_json(render_dingtalk_actioncard(card))) <= 2048
