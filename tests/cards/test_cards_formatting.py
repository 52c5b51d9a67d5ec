"""Phone masking, money, durations and the SLA countdown from an injected now."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bot.cards.formatting import (
    format_ago,
    format_amount,
    format_duration,
    mask_phone,
    sla_countdown,
)
from tests.cards.samples import NOW


@pytest.mark.parametrize("raw, masked", [
    ("13812345678", "138****5678"),
    ("+86 138-1234-5678", "138****5678"),
    ("021-6123 4567", "021****4567"),
    ("12345", "*****"),
    ("", ""),
])
def test_mask_phone(raw: str, masked: str) -> None:
    assert mask_phone(raw) == masked


@pytest.mark.parametrize("amount, zh, en", [
    (12000, "¥1.2万", "¥12,000"),
    (8500, "¥8,500", "¥8,500"),
    (8500.5, "¥8,500.50", "¥8,500.50"),
    (100000, "¥10万", "¥100,000"),
    (Decimal("350000000"), "¥3.5亿", "¥350M"),
    (2_500_000, "¥250万", "¥2.5M"),
    (0, "¥0", "¥0"),
    (None, "未填写", "not given"),
    (float("nan"), "未填写", "not given"),
])
def test_format_amount(amount, zh: str, en: str) -> None:
    assert format_amount(amount, "zh") == zh
    assert format_amount(amount, "en") == en


def test_format_duration() -> None:
    assert format_duration(61) == "2 分钟"
    assert format_duration(3600 + 5 * 60) == "1 小时 5 分钟"
    assert format_duration(2 * 86400 + 3 * 3600, "en") == "2 d 3 h"


def test_sla_remaining_and_overdue_follow_the_injected_now() -> None:
    due = NOW + timedelta(minutes=3)
    assert sla_countdown(due, NOW) == ("还剩 3 分钟", False)
    assert sla_countdown(due, NOW + timedelta(minutes=2, seconds=1)) == ("还剩 1 分钟", False)
    assert sla_countdown(due, NOW + timedelta(minutes=3)) == ("刚刚超时", True)
    assert sla_countdown(due, NOW + timedelta(minutes=8, seconds=59)) == ("已超时 5 分钟", True)
    assert sla_countdown(due, NOW + timedelta(minutes=8), "en") == ("Overdue by 5 min", True)
    assert sla_countdown(due, NOW, "en") == ("3 min left", False)


def test_sla_works_across_timezones_and_refuses_naive_times() -> None:
    due_utc = (NOW + timedelta(minutes=10)).astimezone(timezone.utc)
    assert sla_countdown(due_utc, NOW)[0] == "还剩 10 分钟"
    with pytest.raises(ValueError):
        sla_countdown(datetime(2025, 3, 10, 10, 0), NOW)


def test_format_ago() -> None:
    assert format_ago(NOW - timedelta(seconds=30), NOW) == "刚刚"
    assert format_ago(NOW - timedelta(hours=5), NOW, "en") == "5 h ago"
    assert format_ago(NOW - timedelta(days=3, hours=2), NOW) == "3 天前"
