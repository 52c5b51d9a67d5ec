"""Value formatting for cards: phone masking, money, durations, SLA countdowns.

No clock here: every time-dependent function takes ``now``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from leadbot.i18n import t

_NON_DIGIT = re.compile(r"\D")


def mask_phone(phone: str | None) -> str:
    """138****5678: the first 3 and last 4 digits, enough to recognise, not enough to dial.

    Same rule as leadbot.masking, which this pure package may not import.
    """
    if not phone:
        return ""
    digits = _NON_DIGIT.sub("", phone)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def _to_decimal(amount: Decimal | int | float | str) -> Decimal | None:
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def _one_decimal(value: Decimal) -> str:
    text = str(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
    return text[:-2] if text.endswith(".0") else text


def format_amount(amount: Decimal | int | float | str | None, lang: str = "zh") -> str:
    """¥8,500 · ¥1.2万 · ¥3.5亿 in Chinese; ¥12,000 · ¥1.2M in English.

    Chinese readers count in 万, so anything from ten thousand up is shown that way.
    """
    value = _to_decimal(amount) if amount is not None else None
    if value is None:
        return t("value.unknown", lang)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if lang == "zh" and value >= Decimal(100_000_000):
        return f"{sign}¥{_one_decimal(value / Decimal(100_000_000))}亿"
    if lang == "zh" and value >= Decimal(10_000):
        return f"{sign}¥{_one_decimal(value / Decimal(10_000))}万"
    if lang != "zh" and value >= Decimal(1_000_000):
        return f"{sign}¥{_one_decimal(value / Decimal(1_000_000))}M"
    if value == value.to_integral_value():
        return f"{sign}¥{int(value):,}"
    return f"{sign}¥{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


def format_duration(seconds: float, lang: str = "zh") -> str:
    """3 分钟 · 1 小时 5 分钟 · 2 天 3 小时 (whole minutes, rounded up: 'still 1 minute')."""
    minutes = max(0, math.ceil(seconds / 60))
    if minutes < 60:
        return t("duration.minutes", lang, minutes=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return t("duration.hours", lang, hours=hours, minutes=minutes)
    days, hours = divmod(hours, 24)
    return t("duration.days", lang, days=days, hours=hours)


def _require_aware(value: datetime, name: str) -> None:
    # A naive datetime here means a clock bug upstream; a wrong countdown would hide it.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def sla_seconds_left(due_at: datetime, now: datetime) -> float:
    """Seconds until the deadline; negative once it has passed."""
    _require_aware(due_at, "sla_due_at")
    _require_aware(now, "now")
    return (due_at - now).total_seconds()


def sla_countdown(due_at: datetime, now: datetime, lang: str = "zh") -> tuple[str, bool]:
    """('还剩 3 分钟', False) before the deadline, ('已超时 5 分钟', True) after it."""
    left = sla_seconds_left(due_at, now)
    if left > 0:
        return t("sla.remaining", lang, duration=format_duration(left, lang)), False
    overdue = -left
    if overdue < 60:
        return t("sla.just_overdue", lang), True
    # Overdue time rounds down: "5 minutes overdue" only once five full minutes have passed.
    return t("sla.overdue", lang, duration=format_duration(overdue // 60 * 60, lang)), True


def minutes_left(due_at: datetime, now: datetime) -> int:
    """Whole minutes left, rounded up, never below 0 (for '3 分钟内跟进')."""
    return max(0, math.ceil(sla_seconds_left(due_at, now) / 60))


def format_ago(then: datetime, now: datetime, lang: str = "zh") -> str:
    """刚刚 · 5 分钟前 · 3 小时前 · 2 天前."""
    _require_aware(then, "then")
    _require_aware(now, "now")
    seconds = (now - then).total_seconds()
    if seconds < 60:
        return t("ago.just_now", lang)
    if seconds < 3600:
        return t("ago.minutes", lang, n=int(seconds // 60))
    if seconds < 86400:
        return t("ago.hours", lang, n=int(seconds // 3600))
    return t("ago.days", lang, n=int(seconds // 86400))


def format_percent(score: float) -> str:
    return f"{round(max(0.0, min(1.0, score)) * 100)}%"

