"""The plain-text fallback: lock-screen friendly, ≤2048 bytes, cut on a character boundary."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cards import Button, Card, Field, build_lead_card, render_text
from bot.cards.text_limits import truncate_chars, truncate_utf8, truncate_zi, utf8_len
from tests.cards.samples import LINK, NOW, lead_view


def test_first_line_says_what_and_who_then_the_link() -> None:
    card = build_lead_card(lead_view(), now=NOW, buttons={"claim": "claim:c", "pass": "pass:p"},
                           link=LINK)
    lines = render_text(card).splitlines()
    assert lines[0] == "新线索：王小明 · 华为 · 138****5678"
    assert lines[1] == f"认领 / 放弃 → {LINK}"
    assert "跟进时限：还剩 3 分钟" in lines


def test_english_text() -> None:
    card = build_lead_card(lead_view(), now=NOW, lang="en", buttons={"claim": "claim:c"}, link=LINK)
    lines = render_text(card).splitlines()
    assert lines[0] == "New lead: 王小明 · 华为 · 138****5678"
    assert lines[1] == f"Claim → {LINK}"
    # lang only changes the words the renderer adds; the card's own texts stay as built.
    plain = build_lead_card(lead_view(), now=NOW, lang="en", link=LINK)
    assert render_text(plain).splitlines()[1] == f"Details → {LINK}"
    assert render_text(plain, "zh").splitlines()[1] == f"详情 → {LINK}"


def test_huge_input_fits_2048_bytes_and_keeps_headline_and_link() -> None:
    huge = "甲乙丙丁戊己庚辛壬癸😀" * 500
    card = Card(kind="lead", title="新线索：" + huge, subtitle=huge,
                fields=tuple(Field("备注", huge) for _ in range(20)), badges=(huge,),
                buttons=(Button(key="claim:c", text="认领"),), link=LINK, footer=huge, body=huge)
    text = render_text(card)
    raw = text.encode("utf-8")
    assert len(raw) <= 2048
    raw.decode("utf-8", errors="strict")
    assert text.startswith("新线索：甲乙丙")
    assert text.splitlines()[1] == f"认领 → {LINK}"


@settings(max_examples=100, deadline=None)
@given(title=st.text(min_size=1, max_size=3000), value=st.text(max_size=3000))
def test_any_input_stays_within_the_limit(title: str, value: str) -> None:
    card = Card(kind="lead", title=title, subtitle=value, fields=(Field("x", value),) * 3,
                link=LINK, body=value)
    assert utf8_len(render_text(card)) <= 2048


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300), limit=st.integers(min_value=0, max_value=400))
def test_truncations_never_split_a_character_and_respect_the_limit(text: str, limit: int) -> None:
    cut = truncate_utf8(text, limit)
    assert utf8_len(cut) <= limit
    assert cut == text or cut.endswith("…") or cut == ""
    assert len(truncate_chars(text, limit)) <= max(limit, 0)
    zi = truncate_zi(text, limit)
    assert zi == text or zi.endswith("…")


def test_emoji_with_joiners_is_not_left_dangling() -> None:
    family = "👨\u200d👩\u200d👧"
    cut = truncate_utf8("家" + family * 3, 10)
    assert not cut.rstrip("…").endswith("\u200d")
