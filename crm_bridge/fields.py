"""Vocabularies of the rep directory that the store and the CSV imports both check against, and
the one way a list cell ("华东;华南、华北") is split: a module of its own so neither reaches into
the other for them."""

from __future__ import annotations

import re

REP_ROLES = ("rep", "manager", "admin")
REP_STATUSES = ("active", "on_leave", "left")
DELIVERY_PROFILES = ("card", "text", "both", "auto")
_LIST_SPLIT = re.compile(r"[;,|、，；]")


def split_list(value: str | None) -> list[str]:
    return [v.strip() for v in _LIST_SPLIT.split(value or "") if v.strip()]
