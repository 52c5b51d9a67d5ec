"""WeCom limits: what the API would reject or the client would cut, handled before sending."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cards import (
    Button,
    Card,
    Field,
    build_lead_card,
    render_wecom,
    render_wecom_markdown,
    render_wecom_template_card,
    render_wecom_textcard,
    render_wecom_update,
)
from bot.cards.text_limits import display_width, utf8_len
from tests.cards.samples import LINK, NOW, lead_view

LONG_ZH = "北京市海淀区中关村科技园区软件与信息服务业股份有限公司华北大区销售一部" * 8
TASK_ID_CHARS = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-@")


def _zi(text: str) -> float:
    return display_width(text) / 2


def _huge_card(**overrides) -> Card:
    buttons = tuple(Button(key=f"{a}:{'t' * 200}{i}", text=f"{a}按钮按钮按钮按钮按钮按钮", style="danger")
                    for i, a in enumerate(("claim", "advance", "merge", "distinct", "reassign",
                                           "snooze", "pass", "undo")))
    base = dict(kind="lead", title="新线索：" + LONG_ZH, subtitle=LONG_ZH,
                fields=tuple(Field(f"{LONG_ZH[:12]}{i}", LONG_ZH, alert=i % 2 == 0) for i in range(10)),
                badges=("沉默客户", "疑似重复", LONG_ZH), buttons=buttons, link=LINK,
                card_ref="lead-1-x", footer=LONG_ZH, body=LONG_ZH + "\n" + LONG_ZH, tone="alert")
    base.update(overrides)
    return Card(**base)


def test_button_card_shape_and_limits_on_huge_chinese_input() -> None:
    tc = render_wecom(_huge_card(), agent_id=1000002)["template_card"]
    assert tc["card_type"] == "button_interaction"
    assert tc["task_id"] == "lead-1-x"
    assert len(tc["button_list"]) == 6
    assert len({b["key"] for b in tc["button_list"]}) == 6
    for b in tc["button_list"]:
        assert b["style"] in (1, 2, 3, 4) and utf8_len(b["key"]) <= 1024 and _zi(b["text"]) <= 10
        assert b["key"].split(":")[0] in ("claim", "advance", "merge", "distinct", "reassign", "snooze")
    assert _zi(tc["main_title"]["title"]) <= 26 and tc["main_title"]["title"].endswith("…")
    assert _zi(tc["main_title"]["desc"]) <= 30
    assert _zi(tc["sub_title_text"]) <= 112
    assert _zi(tc["source"]["desc"]) <= 13 and tc["source"]["desc_color"] == 2
    assert len(tc["horizontal_content_list"]) == 6
    for item in tc["horizontal_content_list"]:
        assert _zi(item["keyname"]) <= 5 and _zi(item["value"]) <= 26
    assert tc["card_action"] == {"type": 1, "url": LINK}


def test_duplicate_keys_are_sent_once() -> None:
    b = Button(key="claim:x", text="认领")
    tc = render_wecom_template_card(_huge_card(buttons=(b, b)))
    assert [x["key"] for x in tc["button_list"]] == ["claim:x"]


def test_task_id_is_the_card_ref_and_keeps_wecom_charset() -> None:
    card = build_lead_card(lead_view(), now=NOW, buttons={"claim": "claim:c"}, link=LINK,
                           card_ref="lead-1024-wang_xm@corp-1")
    tc = render_wecom(card, agent_id=1)["template_card"]
    assert set(tc["task_id"]) <= TASK_ID_CHARS and len(tc["task_id"]) <= 128


def test_cards_without_callbacks_become_text_notice_with_card_action() -> None:
    card = _huge_card(buttons=(Button(key="", text="看详情", url=LINK),), card_ref="")
    tc = render_wecom(card, agent_id=1)["template_card"]
    assert tc["card_type"] == "text_notice"
    assert tc["card_action"] == {"type": 1, "url": LINK}
    assert tc["jump_list"] == [{"type": 1, "title": "看详情", "url": LINK}]
    assert "task_id" not in tc and "button_list" not in tc


def test_without_link_or_card_ref_it_falls_back_to_text_not_an_error() -> None:
    body = render_wecom(_huge_card(link="", card_ref="", buttons=()), agent_id=7)
    assert body["msgtype"] == "text" and body["agentid"] == 7
    assert utf8_len(body["text"]["content"]) <= 2048


def test_update_without_buttons_left_becomes_a_text_notice_of_the_same_copy() -> None:
    # A button_interaction card needs a button_list in an update too (conformance W7): with
    # nothing left to tap, the copy becomes a text_notice that opens the H5 page.
    card = _huge_card(buttons=(), state="claimed")
    body = render_wecom_update(card, agent_id=5, response_code="rc")
    assert body["agentid"] == 5 and body["response_code"] == "rc"
    tc = body["template_card"]
    assert tc["card_type"] == "text_notice" and tc["card_action"]["url"] == card.link
    assert tc["task_id"] == card.card_ref and "button_list" not in tc
    assert render_wecom_update(card) == {"template_card": tc}


def test_update_without_buttons_or_link_keeps_the_greyed_out_button_card() -> None:
    card = _huge_card(buttons=(), state="claimed", link="")
    tc = render_wecom_update(card, agent_id=5, response_code="rc")["template_card"]
    assert tc["card_type"] == "button_interaction" and tc["replace_text"] == "已认领"


def test_textcard_limits() -> None:
    tc = render_wecom_textcard(_huge_card())["textcard"]
    assert len(tc["title"]) <= 128
    assert len(tc["description"]) <= 512
    assert tc["description"].startswith('<div class="gray">') and tc["description"].endswith("</div>")
    assert tc["description"].count("<div") == tc["description"].count("</div>")
    assert len(tc["btntxt"]) <= 4 and tc["url"] == LINK


def test_textcard_escapes_user_html() -> None:
    card = Card(kind="lead", title="新线索", subtitle="<script>x</script>", link=LINK)
    desc = render_wecom_textcard(card)["textcard"]["description"]
    assert "<script>" not in desc and "&lt;script&gt;" in desc


def test_markdown_fits_robot_and_app_limits_and_keeps_the_link() -> None:
    content = render_wecom_markdown(_huge_card())["markdown"]["content"]
    assert utf8_len(content) <= 4096 and content.endswith(f"]({LINK})")
    small = render_wecom_markdown(_huge_card(), max_bytes=2048)["markdown"]["content"]
    assert utf8_len(small) <= 2048 and small.endswith(f"]({LINK})")


def test_markdown_neutralises_user_markup() -> None:
    card = Card(kind="lead", title="新线索：**王**", subtitle="[点我](http://evil) <b>", link=LINK)
    content = render_wecom_markdown(card)["markdown"]["content"]
    assert "http://evil" in content  # the text stays readable …
    assert "[点我]" not in content and "<b>" not in content and "**王**" not in content


@settings(max_examples=60, deadline=None)
@given(title=st.text(min_size=1, max_size=400), value=st.text(max_size=400),
       label=st.text(max_size=60))
def test_any_text_renders_to_valid_limited_json(title: str, value: str, label: str) -> None:
    card = Card(kind="lead", title=title, subtitle=value, fields=(Field(label, value),) * 8,
                buttons=(Button(key="claim:t", text=title),), link=LINK, card_ref="r",
                footer=value, body=value)
    tc = render_wecom(card, agent_id=1)["template_card"]
    json.dumps(tc, ensure_ascii=False).encode("utf-8")  # serialisable, valid UTF-8
    assert _zi(tc["main_title"]["title"]) <= 26
    for item in tc.get("horizontal_content_list", []):
        assert _zi(item["keyname"]) <= 5 and _zi(item["value"]) <= 26
    assert utf8_len(render_wecom_markdown(card)["markdown"]["content"]) <= 4096
    assert len(render_wecom_textcard(card)["textcard"]["description"]) <= 512


def test_callbacks_without_card_ref_still_reach_the_rep_through_the_link() -> None:
    tc = render_wecom(_huge_card(card_ref=""), agent_id=1)["template_card"]
    assert tc["card_type"] == "text_notice" and tc["card_action"]["url"] == LINK
