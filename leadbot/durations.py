"""Durations as sales ops write them in config: "90s", "4m", "2h", "3d", "1h30m"."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class DurationError(ValueError):
    pass


def parse_duration(text: str | int | float) -> timedelta:
    """A bare number is seconds; otherwise one or more <number><unit> parts."""
    if isinstance(text, bool):
        raise DurationError(f"not a duration: {text!r}")
    if isinstance(text, (int, float)):
        if text < 0:
            raise DurationError(f"negative duration: {text!r}")
        return timedelta(seconds=text)
    s = str(text).strip().lower()
    if not s:
        raise DurationError("empty duration")
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return timedelta(seconds=float(s))
    pos = 0
    total = 0.0
    for m in _PART.finditer(s):
        if s[pos:m.start()].strip():
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos == 0 or s[pos:].strip():
        raise DurationError(f'not a duration: {text!r} (use e.g. "90s", "4m", "2h", "3d")')
    return timedelta(seconds=total)
