"""Builders: what each card shows, and what it must never show."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bot.cards import (
    Button,
    build_claimed_card,
    build_duplicate_card,
    build_escalation_card,
    build_friend_match_card,
    build_lead_card,
    build_notice_card,
    build_pool_card,
    build_reminder_card,
    build_rollup_card,
    make_buttons,
    render_dingtalk_card,
    render_text,
    render_wecom,
)
from tests.cards.samples import LINK, NOW, duplicate_view, friend_view, lead_view, rollup_items

FULL = "13812345678"
MASKED = "138****5678"
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _all_text(card) -> str:
    return " ".join([card.title, card.subtitle, card.footer, card.body, *card.badges,
                     *(f"{f.label} {f.value}" for f in card.fields),
                     *(b.text for b in card.buttons)])


def test_phone_is_masked_until_the_viewer_claimed_it() -> None:
    unclaimed = build_lead_card(lead_view(), now=NOW)
    assert MASKED in unclaimed.subtitle and FULL not in _all_text(unclaimed)
    mine = build_lead_card(lead_view(), now=NOW, claimed_by_viewer=True)
    assert FULL in mine.subtitle


def test_claimed_card_reveals_the_phone_to_the_claimer_only() -> None:
    others = build_claimed_card(lead_view(), claimer_name="张三", now=NOW)
    assert others.title == "已被 张三 认领" and FULL not in _all_text(others)
    claimer = build_claimed_card(lead_view(), claimer_name="张三", now=NOW, claimed_by_viewer=True)
    assert FULL in claimer.subtitle and claimer.state == "claimed"


@pytest.mark.parametrize("build", [
    lambda v: build_pool_card(v, now=NOW),
    lambda v: build_escalation_card(v, now=NOW),
    lambda v: build_rollup_card([v]),
])
def test_shared_place_cards_never_show_a_full_phone(build) -> None:
    card = build(lead_view())
    for rendered in (render_text(card), _all_text(card)):
        assert FULL not in rendered


def test_duplicate_card_masks_both_sides() -> None:
    card = build_duplicate_card(duplicate_view(), buttons={"merge": "merge:m", "distinct": "distinct:d"})
    assert card.title == "可能与 王晓明 重复 — 合并?"
    assert FULL not in _all_text(card)
    assert [b.action for b in card.buttons] == ["merge", "distinct"]


def test_lead_card_shows_what_a_rep_needs() -> None:
    card = build_lead_card(lead_view(), now=NOW, buttons={"claim": "claim:c"})
    values = {f.label: f.value for f in card.fields}
    assert card.title == "新线索：王小明"
    assert card.subtitle == f"华为 · {MASKED}"
    assert values["来源"] == "官网表单 · 2025春季活动"
    assert values["地区"] == "华东"
    assert values["金额"] == "¥1.2万"
    assert values["历史"] == "此前 2 条线索 · 5 次跟进"
    assert values["疑似重复"] == "可能与 王晓明 重复 — 合并?"
    assert values["跟进时限"] == "还剩 3 分钟"
    assert "沉默客户" in card.badges and card.tone == "alert"
    assert "负责人" not in values  # nobody owns it yet


@pytest.mark.parametrize(("earlier", "activities", "lang", "shown"), [
    (0, 3, "zh", "3 次跟进"), (2, 0, "zh", "此前 2 条线索"), (0, 0, "zh", "首次咨询"),
    (0, 1, "en", "1 activity"), (1, 0, "en", "1 earlier lead")])
def test_history_says_only_what_there_is(earlier, activities, lang, shown) -> None:
    card = build_lead_card(lead_view(earlier_leads=earlier, activities=activities), now=NOW, lang=lang)
    values = {f.label: f.value for f in card.fields}
    assert shown in values.values()
    assert not any(" 0 " in f" {v} " for v in values.values())


def test_owner_shows_once_claimed() -> None:
    card = build_lead_card(lead_view(state="claimed", owner_name="张三"), now=NOW)
    values = {f.label: f.value for f in card.fields}
    assert values["负责人"] == "张三" and "跟进时限" not in values


def test_sla_overdue_vs_remaining_from_injected_now() -> None:
    view = lead_view(sla_due_at=NOW + timedelta(minutes=3), silent_flag=False, duplicate_of=None)
    before = build_lead_card(view, now=NOW)
    after = build_lead_card(view, now=NOW + timedelta(minutes=10))
    sla_before = next(f for f in before.fields if f.label == "跟进时限")
    sla_after = next(f for f in after.fields if f.label == "跟进时限")
    assert (sla_before.value, sla_before.alert) == ("还剩 3 分钟", False)
    assert (sla_after.value, sla_after.alert) == ("已超时 7 分钟", True)
    assert before.tone == "normal" and after.tone == "alert"
    assert "已超时" in after.badges and "已超时" not in before.badges
    reminder = build_reminder_card(view, now=NOW)
    assert "3 分钟内跟进" in reminder.subtitle


def test_english_catalogue_is_used_with_lang_en() -> None:
    view = lead_view(customer_name="Wang", company="Acme", campaign="Spring", region="East",
                     stage="Qualify", duplicate_of=None)
    for card in (build_lead_card(view, now=NOW, lang="en", buttons={"claim": "claim:c"}),
                 build_claimed_card(view, claimer_name="Li", now=NOW, lang="en"),
                 build_reminder_card(view, now=NOW, lang="en"),
                 build_escalation_card(view, now=NOW, lang="en"),
                 build_pool_card(view, now=NOW, lang="en"),
                 build_rollup_card([view], lang="en"),
                 build_friend_match_card(friend_view(customer_name="Wang", company="Acme",
                                                     stage="Qualify", contact_name="W",
                                                     owner_name="Li"),
                                         now=NOW, lang="en")):
        assert card.lang == "en"
        assert not _CJK.search(_all_text(card)), _all_text(card)
        assert not _CJK.search(render_text(card)), render_text(card)


def test_buttons_come_in_one_order_with_catalogue_texts() -> None:
    buttons = make_buttons({"pass": "pass:p", "snooze": "snooze:s", "claim": "claim:c"})
    assert [(b.action, b.text, b.style) for b in buttons] == [
        ("claim", "认领", "primary"), ("snooze", "稍后提醒", "default"), ("pass", "放弃", "default")]
    assert make_buttons({"claim": "claim:c"}, "en")[0].text == "Claim"
    ready = (Button(key="undo:u", text="撤销认领"),)
    assert make_buttons(ready) == ready


def test_bad_button_specs_are_refused() -> None:
    with pytest.raises(ValueError):
        make_buttons({"grab": "grab:x"})
    with pytest.raises(ValueError):
        make_buttons({"claim": "pass:x"})
    with pytest.raises(TypeError):
        make_buttons(["claim:x"])  # type: ignore[list-item]


def test_rollup_counts_the_rest() -> None:
    card = build_rollup_card(rollup_items(), 12)
    assert card.title == "你有 12 条新线索"
    assert len(card.fields) == 5 and card.footer == "另有 7 条"
    assert build_rollup_card(rollup_items()[:2]).footer == ""


def test_friend_match_warns_about_another_owner() -> None:
    card = build_friend_match_card(friend_view(), now=NOW)
    values = {f.label: f for f in card.fields}
    assert values["提示"].value == "该客户由 李娜 负责" and values["提示"].alert
    assert values["最近跟进"].value == "3 天前"
    assert values["阶段"].value == "方案共创"
    assert FULL not in _all_text(card)
    mine = build_friend_match_card(friend_view(owned_by_viewer=True, owner_name="我"), now=NOW)
    assert FULL in mine.subtitle and not mine.badges


def test_notice_card_carries_body_and_fields() -> None:
    card = build_notice_card("操作已过期", "请在最新的卡片上重试", fields={"线索": "#1024"})
    assert card.body == "请在最新的卡片上重试" and card.fields[0].label == "线索"
    assert render_wecom(card, agent_id=1)["msgtype"] == "text"  # no link, no card_ref


def test_escalation_names_the_owner_and_overdue_time() -> None:
    card = build_escalation_card(
        lead_view(owner_name="张三", sla_due_at=NOW - timedelta(minutes=25)), now=NOW, level=2)
    assert card.subtitle == "张三 已超时 25 分钟" and card.tone == "alert"
    assert card.fields[0].value == "张三"


def test_unnamed_customer_still_reads_well() -> None:
    card = build_lead_card(lead_view(customer_name="  "), now=NOW)
    assert card.title == "新线索：未留名客户"


def test_builders_are_deterministic() -> None:
    a = build_lead_card(lead_view(), now=NOW, buttons={"claim": "claim:c"}, link=LINK, card_ref="r1")
    b = build_lead_card(lead_view(), now=NOW, buttons={"claim": "claim:c"}, link=LINK, card_ref="r1")
    assert a == b
    assert render_dingtalk_card(a) == render_dingtalk_card(b)


def test_storm_card_offers_the_batch_and_the_list_and_reads_the_same_as_text() -> None:
    from bot.cards.builders import build_storm_card, build_storm_result_card
    from bot.cards.views import StormLine, StormOutcome

    lines = [StormLine(i, f"客户{i} · 公司{i} · 张三", NOW - timedelta(minutes=60 - i)) for i in range(8)]
    card = build_storm_card(lines, 37, team="华东", now=NOW, reassign_key="reassign:tok", link=LINK,
                            card_ref="storm-1")
    assert card.title == "华东团队 37 条线索超时"
    assert [b.text for b in card.buttons] == ["全部改派", "查看全部"] and card.buttons[1].url == LINK
    assert "1. 客户0 · 公司0 · 张三 · 1 小时前" in card.body and "客户5" not in card.body  # the five worst
    assert card.footer == "…另有 32 条"
    body = render_wecom(card, agent_id=1)["template_card"]
    assert [b.get("type") for b in body["button_list"]] == [0, 1] and body["card_action"]["url"] == LINK
    text = render_text(card)
    assert text.splitlines()[1] == f"全部改派 → {LINK}"
    en = build_storm_card(lines[:1], 1, team="East", now=NOW, lang="en", link=LINK)
    assert en.title == "East team: 1 lead overdue" and [b.text for b in en.buttons] == ["Full list"]

    done = build_storm_result_card([StormOutcome("客户1", "moved", to_name="李四"),
                                    StormOutcome("客户2", "skipped", why="已被 张三 认领"),
                                    StormOutcome("客户3", "pooled")], link=LINK, card_ref="storm-1")
    assert done.title == "已改派 2 条，跳过 1 条" and not done.buttons and done.state == "reassigned"
    assert done.body.splitlines() == ["跳过 客户2：已被 张三 认领", "客户1 → 李四", "客户3 → 公海（无人可接手）"]
