"""Vocabularies of the rep directory that the store and the CSV imports both check against, the
one way a list cell ("华东;华南、华北") is split and the one way an amount is read ("1.2万"): a
module of its own so the store, the imports and the CRM bridge need not reach into each other."""

from __future__ import annotations

import math
import re
from typing import Any

REP_ROLES = ("rep", "manager", "admin")
REP_STATUSES = ("active", "on_leave", "left")
DELIVERY_PROFILES = ("card", "text", "both", "auto")
_LIST_SPLIT = re.compile(r"[;,|、，；]")


def split_list(value: str | None) -> list[str]:
    return [v.strip() for v in _LIST_SPLIT.split(value or "") if v.strip()]


_WAN = re.compile(r"^\s*([\d.,]+)\s*(万|w|W)\s*$")


def parse_amount(value: Any) -> float | None:
    """12000, "12,000", "1.2万", "¥12000" -> 12000.0; anything else -> None (kept as given)."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, (int, float)):
            parsed = float(value)
        else:
            text_value = str(value).strip().replace("¥", "").replace("￥", "").replace("元", "")
            wan = _WAN.match(text_value)
            parsed = (float(wan.group(1).replace(",", "")) * 10000 if wan
                      else float(text_value.replace(",", "")))
    except (ValueError, OverflowError):  # "abc", or an integer of 400 digits
        return None
    # NaN and infinities are not amounts (and not JSON): kept as given, flagged.
    return parsed if math.isfinite(parsed) else None
