"""Masking for anything that lands in a shared place: logs, group cards, audit exports."""

from __future__ import annotations

import re

# Chinese mobiles (optionally +86 / 0086 / 86-, with spaces or dashes) and landlines with an
# area code; dates, times, ids and amounts do not look like either.
_DIGIT_RUN = re.compile(r"(?<![\d.:])((?:(?:\+|00)?86[- ]?)?1[3-9]\d(?:[- ]?\d){8}|0\d{2,3}[- ]?\d{7,8})(?![\d.:])")


def mask_phone(phone: str | None) -> str:
    """138****5678: keeps the first 3 and last 4 digits, enough to recognise, not to dial."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def mask_phones_in(text: str) -> str:
    """Masks every phone-like digit run inside free text (log messages, remarks)."""
    return _DIGIT_RUN.sub(lambda m: mask_phone(m.group(1)), text)


def mask_secret(value: str | None) -> str:
    if not value:
        return ""
    return value[:2] + "…" if len(value) > 6 else "…"
