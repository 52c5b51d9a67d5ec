"""Every kind of message a person reads, rendered in Chinese and in English: no raw code (expo,
sticky_owner, manager, ...), no English word in a Chinese message, no Chinese in an English one.

The data differs by language on purpose (王小明 / Wang Xiaoming): whatever script does not belong
in the output must then have come from leadbot's own words, not from the data.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, Iterator

import pytest

from bot.cards import (
    CustomerBrief,
    DuplicateCardView,
    DuplicateRef,
    FriendMatchView,
    LeadCardView,
    RollupItem,
    build_claimed_card,
    build_duplicate_card,
    build_escalation_card,
    build_friend_match_card,
    build_lead_card,
    build_notice_card,
    build_pool_card,
    build_reassigned_card,
    build_reminder_card,
    build_rollup_card,
    render_text,
)
from leadbot import i18n
from leadbot.i18n import LANGUAGES, t
from bot.cards.model import ACTIONS
from bot.cards.render_dingtalk import dingtalk_markdown
from bot.cards.render_wecom import render_wecom_markdown
from routing.explain_text import render_decision
from notifications.digest import make_text_digest

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=timezone.utc)

DATA = {
    "zh": dict(name="王小明", other="王晓明", company="华为", owner="李娜", rep="赵敏", rep2="钱伟", stage="方案共创",
               region="华东", campaign="春季活动", contact="小明", team="华东", rule="华东大区", city="上海"),
    "en": dict(name="Wang Xiaoming", other="Wang Ming", company="Acme", owner="Li Na", rep="Zhao Min",
               rep2="Qian Wei", stage="Proposal", region="East", campaign="Spring", contact="Ming",
               team="East", rule="East region", city="Shanghai"),
}

# Codes as leadbot stores them. None may reach a person as it is.
CHANNELS = ["web_form", "expo", "baidu", "wechat_ad", "referral", "ads", "api", "import", "call_center"]
REASONS = ["manager", "sla_reassign", "declined", "rep_left", "from_pool"]
SKIPS = ["excluded", "left", "on_leave", "not_active", "sidelined", "outside_hours", "inactive",
         "over_capacity", "daily_cap", "no_weight", "not_found"]
STRATEGIES = ["weighted_round_robin", "least_loaded", "capped"]
OUTCOMES = ["sticky", "assigned", "backup", "manager", "pool"]
MATCHES = ["phone", "email", "unionid", "external_userid", "dingtalk_id", "id_number", "name_company", "name",
           "mobile", "landline", "email_domain", "company", "address", "city", "wechat_unionid",
           "wecom_external_userid"]
RULE_CODES = ["sticky_owner"]
CODES = sorted(set(CHANNELS + REASONS + SKIPS + STRATEGIES + OUTCOMES + MATCHES + RULE_CODES))
# Codes that are also plain English words may appear in English sentences ("the team manager").
ENGLISH_WORDS = {"manager", "declined", "left", "excluded", "inactive", "sticky", "assigned", "backup", "pool",
                 "phone", "email", "name", "ads", "api", "import", "referral", "capped", "sidelined", "mobile",
                 "company", "address", "city", "landline"}

# Latin that belongs in Chinese text: the product's name, and abbreviations Chinese sales teams use.
LATIN_IN_ZH = {"leadbot", "CRM", "UTC", "SLA", "H5", "API", "ID", "ISO"}
_URL = re.compile(r"https?://\S+")
# Markup (<font color=...>, comments) and commands to type (leadbot outbox) are not words.
# Time-zone ids (Asia/Shanghai, after a time), config sections and keys ([duty], [crm_bridge] pull_url)
# are named as configured; command-line options (--platform wecom) are typed as they are.
_MARKUP = re.compile(r"<[^>]*>|leadbot [a-z]+|\b[\w.]+\.toml\b|\b[A-Z][a-z]+/[A-Za-z_]+\b"
                     r"|\[[a-z_]+\](?: [a-z_]+\b(?! [a-z]))?|--[a-z-]+(?: [a-z]+\b)?")
_LATIN = re.compile(r"[A-Za-z][A-Za-z_]+")
# Chinese characters and Chinese punctuation (【】，。：); not the full-width ＊ and ＿ that keep
# masked phones and ids from turning into markdown emphasis.
_CJK = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff01-\uff09\uff0b-\uff3e\uff40-\uffef]")


def problems(text: str, lang: str) -> list[str]:
    text = _MARKUP.sub(" ", _URL.sub(" ", text))
    found = []
    for code in CODES:
        if lang == "en" and code in ENGLISH_WORDS:
            continue
        if re.search(rf"(?<![A-Za-z_]){re.escape(code)}(?![A-Za-z_])", text):
            found.append(f"raw code {code!r}")
    if lang == "zh":
        found += [f"English word {w!r}" for w in _LATIN.findall(text) if w not in LATIN_IN_ZH]
    else:
        found += [f"Chinese {c!r}" for c in _CJK.findall(text)]
    return found


def lead(lang: str, **over: Any) -> LeadCardView:
    d = DATA[lang]
    base: dict[str, Any] = dict(lead_id=1024, customer_name=d["name"], company=d["company"], phone="13812345678",
                                source_channel="expo", campaign=d["campaign"], region=d["region"], amount=1200000,
                                earlier_leads=1, activities=1, duplicate_of=DuplicateRef(d["other"], 88),
                                sla_due_at=NOW + timedelta(minutes=3), stage=d["stage"], silent_flag=True)
    base.update(over)
    return LeadCardView(**base)


def cards(lang: str) -> Iterator[tuple[str, Any]]:
    d = DATA[lang]
    buttons = {a: f"{a}:tok" for a in ACTIONS}
    for channel in CHANNELS:
        yield f"lead/{channel}", build_lead_card(lead(lang, source_channel=channel, earlier_leads=2, activities=3),
                                                 now=NOW, lang=lang, buttons=buttons)
    yield "lead/first", build_lead_card(lead(lang, earlier_leads=0, activities=0), now=NOW, lang=lang)
    yield "lead/overdue", build_lead_card(lead(lang, sla_due_at=NOW - timedelta(hours=26)), now=NOW, lang=lang)
    yield "claimed/other", build_claimed_card(lead(lang), claimer_name=d["rep"], now=NOW, lang=lang)
    yield "claimed/self", build_claimed_card(lead(lang), claimer_name=d["rep"], now=NOW, lang=lang,
                                             claimed_by_viewer=True)
    yield "pool", build_pool_card(lead(lang), now=NOW, lang=lang, buttons={"claim": "claim:x"})
    yield "reminder", build_reminder_card(lead(lang, state="open"), now=NOW, lang=lang)
    for level in (1, 2):
        yield f"escalation/{level}", build_escalation_card(lead(lang, owner_name=d["rep"],
                                                                sla_due_at=NOW - timedelta(minutes=9)),
                                                           now=NOW, lang=lang, level=level,
                                                           buttons={"reassign": "reassign:x"})
    for reason in REASONS:
        yield f"reassigned/{reason}", build_reassigned_card(lead(lang), from_name=d["rep"], to_name=d["rep2"],
                                                            now=NOW, lang=lang, reason=reason)
    yield "duplicate", build_duplicate_card(DuplicateCardView(
        incoming=CustomerBrief(501, d["name"], d["company"], "13812345678"),
        existing=CustomerBrief(88, d["other"], d["company"], "13812345678", owner_name=d["owner"]),
        reasons=tuple(MATCHES), score=0.92), lang=lang, buttons={"merge": "merge:x", "distinct": "distinct:x"})
    yield "duplicate/worded", build_duplicate_card(DuplicateCardView(
        incoming=CustomerBrief(501, d["name"], d["company"]), existing=CustomerBrief(88, d["other"], d["company"]),
        reasons=(reason_text(lang),), score=0.8), lang=lang)
    for match in MATCHES:
        for mine in (False, True):
            yield f"friend/{match}/{mine}", build_friend_match_card(FriendMatchView(
                customer_id=88, customer_name=d["other"], company=d["company"], phone="13812345678",
                contact_name=d["contact"], owner_name=d["owner"], owned_by_viewer=mine, stage=d["stage"],
                last_activity_at=NOW - timedelta(days=1), open_leads=1, match_reason=match), now=NOW, lang=lang)
    items = [RollupItem(customer_name=d["name"], company=d["company"], source_channel=c, lead_id=i)
             for i, c in enumerate(CHANNELS, 1)]
    yield "rollup/1", build_rollup_card(items[:1], lang=lang)
    yield "rollup/many", build_rollup_card(items, lang=lang)
    yield "notice/rep_left", build_notice_card(t("notice.rep_left", lang, name=d["rep"], n=1), lang=lang)
    yield "notice/sidelined", build_notice_card(t("notice.sidelined", lang, name=d["rep"]), lang=lang)
    yield "notice/stagnation", build_notice_card(t("notice.stagnation", lang, name=d["name"], stage=d["stage"]),
                                                 lang=lang)


def reason_text(lang: str) -> str:
    """An identity-match reason as the identity service words it for a card (every strong one)."""
    from identity import reasons

    codes = [k for k in reasons.TEXTS if k.startswith("strong.")]
    return " + ".join(reasons.TEXTS[k][reasons.LANGS.index(lang)].replace("{v}", "138****5678") for k in codes)


def card_texts(card: Any) -> list[str]:
    out = [card.title, card.subtitle, card.footer, card.body, *card.badges]
    out += [f"{f.label} {f.value}" for f in card.fields] + [b.text for b in card.buttons]
    out += [render_text(card), dingtalk_markdown(card), render_wecom_markdown(card)["markdown"]["content"]]
    return out


def decisions(lang: str) -> Iterator[tuple[str, Any]]:
    """Routing decisions as stored (routing_decisions rows), every outcome, trigger and skip."""
    d = DATA[lang]

    def cand(rep_id: int, name: str, role: str = "member", **kw: Any) -> dict[str, Any]:
        return {"rep_id": rep_id, "name": name, "role": role, "weight": 1, "open": 2, "today": 1, **kw}

    cands = [cand(1, d["rep"], "owner", skip="excluded"), cand(1, d["rep"], skip="excluded"),
             cand(2, d["rep2"], chosen=True, score=1.5), cand(3, d["owner"], score=0.5)]
    cands += [cand(10 + i, f"{d['owner']}{i}", skip=s) for i, s in enumerate(SKIPS)]
    conditions = [{"attribute": "source_channel", "values": ["expo", "baidu"], "min": None, "max": None},
                  {"attribute": "region", "values": [d["city"]], "min": None, "max": None},
                  {"attribute": "amount", "values": [], "min": 500000, "max": None}]
    for outcome in OUTCOMES:
        for strategy in STRATEGIES:
            for trigger in ["new", *REASONS, "some_future_reason"]:
                history = [SimpleNamespace(at=NOW, outcome=o, candidates=cands, rule="sticky_owner")
                           for o in OUTCOMES]
                row = SimpleNamespace(lead_id=7, outcome=outcome, chosen_rep_id=2, strategy=strategy,
                                      rule="sticky_owner" if outcome == "sticky" else d["rule"], rule_version="3",
                                      candidates=cands, previous_owner_id=None if trigger == "new" else 1,
                                      data={"trigger": trigger, "team": d["team"], "conditions": conditions,
                                            "previous_owner_name": d["rep"], "pool_rule": outcome == "pool"})
                yield f"{outcome}/{strategy}/{trigger}", render_decision(row, lang, history=history)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_card_in_one_language(lang: str) -> None:
    bad = {name: found for name, card in cards(lang)
           for found in [sum((problems(x, lang) for x in card_texts(card)), [])] if found}
    assert not bad, bad


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_routing_explanation_in_one_language(lang: str) -> None:
    bad = {name: problems(text, lang) for name, text in decisions(lang) if problems(text, lang)}
    assert not bad, bad


def test_each_person_is_listed_once_and_codes_are_worded() -> None:
    name, text = next((n, x) for n, x in decisions("zh") if n == "assigned/weighted_round_robin/manager")
    assert text.count("赵敏：") == 1  # customer owner and team member: one line
    assert "赵敏：客户负责人，跳过（已放弃或被排除）" in text
    assert "经理将线索从 赵敏 改派" in text and "展会、百度推广" in text and "金额 ≥ 500000" in text
    sticky = next(x for n, x in decisions("en") if n == "sticky/capped/new")
    assert "existing customer keeps its owner" in sticky


@pytest.mark.parametrize("lang", LANGUAGES)
def test_digests_and_counts_in_one_language(lang: str) -> None:
    from store.outbox import OutboxEntry

    render = make_text_digest(lang)
    fields = {f: None for f in OutboxEntry.__dataclass_fields__}
    entries = [OutboxEntry(**{**fields, "payload": {}, "lead_id": i, "idempotency_key": f"k{i}"}) for i in range(12)]
    for n in (1, 12):
        _, payload = render("wecom", "u", entries[:n], None)
        assert not problems(payload["text"], lang), payload["text"]
    one = render("wecom", "u", entries[:1], None)[1]["title"]
    assert one == ("你有 1 条新线索" if lang == "zh" else "You have 1 new lead")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_catalogue_itself_keeps_to_its_language(lang: str) -> None:
    """Every text of every key (each plural form), placeholders filled with neutral values."""
    bad = {}
    for key in i18n.keys():
        if key.startswith("cmd."):
            continue  # commands are matched in both languages, whatever the team's language
        for form in i18n.forms(key, lang):
            text = re.sub(r"\{[a-z_]+\}", "1", form)
            found = problems(text, lang)
            if found:
                bad[key] = found
    assert not bad, bad


def test_the_data_itself_is_clean() -> None:
    """The checker would be blind if the data tripped it: each language's data passes on its own."""
    for lang in LANGUAGES:
        assert not problems(" ".join(DATA[lang].values()), lang)
    assert problems("线索 expo", "zh") and problems("Lead 线索", "en") and problems("来源 web_form", "zh")
    assert problems("skipped (on_leave)", "en") and not problems("the team manager", "en")


def test_views_are_plain_data() -> None:
    assert asdict(lead("zh"))["source_channel"] == "expo"
