"""The catalogue: complete in both languages, consistent placeholders, labels that fit."""

from __future__ import annotations

import pytest

from leadbot import i18n
from leadbot.i18n import LANGUAGES, normalize_lang, placeholders, t
from bot.cards.model import ACTIONS, CARD_STATES
from bot.cards.text_limits import display_width


def test_every_key_exists_in_every_language_and_is_not_empty() -> None:
    for key, entry in i18n.catalogue().items():
        assert set(entry) == set(LANGUAGES), key
        for lang in LANGUAGES:
            assert all(text.strip() for text in i18n.forms(key, lang)), (key, lang)
            if not isinstance(entry[lang], str):  # counted: an "other" form, and a count
                assert "other" in entry[lang] and set(entry[lang]) <= {"one", "other"}, key
                assert all("n" in placeholders(text) for text in i18n.forms(key, lang)), key


def test_both_languages_use_the_same_placeholders() -> None:
    for key in i18n.keys():
        found = {placeholders(text) for lang in LANGUAGES for text in i18n.forms(key, lang)}
        assert len(found) == 1, key


def test_english_counts_take_the_plural_they_need() -> None:
    assert t("count.activities", "en", n=1) == "1 activity"
    assert t("count.activities", "en", n=0) == "0 activities"
    assert t("count.activities", "en", n=3) == "3 activities"
    assert t("count.activities", "zh", n=1) == "1 次跟进"
    assert t("rollup.title", "en", n=1) == "You have 1 new lead"
    assert t("ago.days", "en", n=1) == "1 day ago"


def test_texts_the_brief_promises_are_there() -> None:
    assert t("claimed.by", name="张三") == "已被 张三 认领"
    assert t("claimed.by", "en", name="Zhang") == "Claimed by Zhang"
    assert t("duplicate.question", name="王晓明") == "可能与 王晓明 重复 — 合并?"
    assert t("rollup.title", n=12) == "你有 12 条新线索"
    assert t("rollup.title", "en", n=12) == "You have 12 new leads"
    assert t("sla.due_within", minutes=3) == "3 分钟内跟进"
    for key in ("error.token_expired", "error.token_forged", "error.not_allowed",
                "error.already_claimed", "error.missing_gate", "help.title", "help.body",
                "cmd.help", "cmd.my_leads", "cmd.text_mode", "cmd.card_mode", "cmd.why",
                "search.none", "reminder.title", "escalation.title", "reassign.title",
                "pool.title", "friend.owned_by_other"):
        assert i18n.has(key), key
    for word in ("帮助", "我的线索", "文本模式", "卡片模式", "为什么是我"):
        assert word in t("help.body")
    for word in ("help", "my leads", "text mode", "card mode", "why"):
        assert word in t("help.body", "en")


def test_every_action_and_state_has_a_label() -> None:
    for action in ACTIONS:
        assert i18n.has(f"button.{action}"), action
    for state in CARD_STATES:
        assert i18n.has(f"state.{state}"), state


@pytest.mark.parametrize("lang", LANGUAGES)
def test_labels_fit_wecom_keyname_and_button_limits(lang: str) -> None:
    for key in i18n.keys():
        text = i18n.forms(key, lang)[0] if not placeholders(i18n.forms(key, lang)[0]) else ""
        if key.startswith("field."):
            assert display_width(text) <= 10, (key, text)  # keyname: 5 字
        if key.startswith(("button.", "state.")):
            assert display_width(text) <= 20, (key, text)  # button text: 10 字
    for key in ("button.details", "button.act"):
        assert len(t(key, lang)) <= 4  # textcard btntxt


def test_english_and_fallbacks() -> None:
    assert t("lead.title", "en", name="Wang") == "New lead: Wang"
    assert normalize_lang("en-US") == "en"
    assert normalize_lang("EN_gb") == "en"
    assert normalize_lang("fr") == "zh"
    assert normalize_lang(None) == "zh"
    assert t("lead.title", "fr", name="王") == "新线索：王"


def test_unknown_key_is_a_bug() -> None:
    with pytest.raises(KeyError):
        t("no.such.key")


def test_stage_names_and_unknown_codes_pass_through() -> None:
    assert i18n.stage_name("方案共创", "en") == "方案共创"
    assert i18n.lookup("channel", "web_form", "en") == "Web form"
    assert i18n.lookup("channel", "抖音", "en") == "抖音"
    assert i18n.lookup("gate", "contract", "zh") == "合同"
