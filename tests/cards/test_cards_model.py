"""Model invariants: signed keys are never cut, card refs are valid WeCom task_ids."""

from __future__ import annotations

import pytest

from bot.cards.model import Button, Card, Field, check_card_ref, make_card_ref


def test_button_key_must_start_with_a_known_action() -> None:
    assert Button(key="claim:abc", text="认领").action == "claim"
    for bad in ("claim", "grab:abc", "claim:", ":abc"):
        with pytest.raises(ValueError):
            Button(key=bad, text="x")


def test_button_key_bytes_are_limited_not_truncated() -> None:
    Button(key="claim:" + "a" * (1024 - 6), text="认领")
    with pytest.raises(ValueError):
        Button(key="claim:" + "a" * (1025 - 6), text="认领")


def test_link_buttons_need_no_key_but_a_real_url() -> None:
    b = Button(key="", text="打开", url="https://crm.example.com/x")
    assert not b.is_callback
    with pytest.raises(ValueError):
        Button(key="", text="打开", url="javascript:alert(1)")
    with pytest.raises(ValueError):
        Button(key="", text="打开")


def test_card_ref_follows_wecom_task_id_rules() -> None:
    check_card_ref("lead-42_wang@corp")
    for bad in ("lead.42", "线索42", "a b", "x" * 129):
        with pytest.raises(ValueError):
            Card(kind="lead", title="t", card_ref=bad)


def test_make_card_ref_is_valid_deterministic_and_collision_free() -> None:
    assert make_card_ref("lead", 42, "wangxm", 1) == "lead-42-wangxm-1"
    a = make_card_ref("lead", 42, "wang.xm", 1)
    b = make_card_ref("lead", 42, "wang_xm", 1)
    check_card_ref(a)
    assert a != b and a == make_card_ref("lead", 42, "wang.xm", 1)
    long_ref = make_card_ref("lead", "王" * 200)
    check_card_ref(long_ref)
    assert len(long_ref) <= 128
    assert make_card_ref("lead", "x" * 200) != make_card_ref("lead", "x" * 201)


def test_card_rejects_unknown_state_tone_and_lists() -> None:
    with pytest.raises(ValueError):
        Card(kind="lead", title="t", state="weird")
    with pytest.raises(ValueError):
        Card(kind="lead", title="t", tone="loud")
    with pytest.raises(TypeError):
        Card(kind="lead", title="t", fields=[Field("a", "b")])  # type: ignore[arg-type]
