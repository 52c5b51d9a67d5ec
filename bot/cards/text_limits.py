"""Cutting text to platform limits without breaking characters, tags or JSON.

Platforms count three different ways: WeCom template cards say "建议不超过 N 个字" (a display
width: one Chinese character is one 字, and two Latin letters take about the same room), textcard
and DingTalk titles count characters, and message bodies count UTF-8 bytes. A cut never splits a
character and never leaves a dangling joiner or combining mark, and it always says it cut ("…").
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any, Callable, Sequence

ELLIPSIS = "…"
_WHITESPACE_RUN = re.compile(r"\s+")
# Code points that only make sense attached to what follows or precedes them.
_DANGLING = {"\u200d", "\ufe0e", "\ufe0f"}


def one_line(text: str) -> str:
    """Collapses newlines and runs of spaces: titles and labels must stay on one line."""
    return _WHITESPACE_RUN.sub(" ", text).strip()


def char_width(ch: str) -> int:
    """Display width in half-width columns: 2 for CJK and other wide characters, 0 for marks."""
    if unicodedata.combining(ch) or ch in _DANGLING:
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    return sum(char_width(ch) for ch in text)


def _strip_dangling(text: str) -> str:
    while text and (text[-1] in _DANGLING or unicodedata.combining(text[-1])):
        text = text[:-1]
    return text


def truncate_zi(text: str, max_zi: int) -> str:
    """Cuts to at most ``max_zi`` 字 (WeCom template-card limits), i.e. 2*max_zi columns."""
    budget = 2 * max_zi
    if display_width(text) <= budget:
        return text
    budget -= display_width(ELLIPSIS)
    out: list[str] = []
    used = 0
    for ch in text:
        w = char_width(ch)
        if used + w > budget:
            break
        out.append(ch)
        used += w
    return _strip_dangling("".join(out)).rstrip() + ELLIPSIS


def truncate_chars(text: str, max_chars: int) -> str:
    """Cuts to at most ``max_chars`` code points, the ellipsis included."""
    if len(text) <= max_chars:
        return text
    if max_chars <= 0:
        return ""
    return _strip_dangling(text[: max_chars - 1]).rstrip() + ELLIPSIS


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def truncate_utf8(text: str, max_bytes: int, ellipsis: str = ELLIPSIS) -> str:
    """Cuts to at most ``max_bytes`` UTF-8 bytes, on a character boundary, ellipsis included."""
    if utf8_len(text) <= max_bytes:
        return text
    budget = max_bytes - utf8_len(ellipsis)
    if budget <= 0:
        return ""
    # errors="ignore" drops the partial character a byte cut may leave at the end.
    cut = text.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
    return _strip_dangling(cut).rstrip() + ellipsis


def fit_lines(head: Sequence[str], body: Sequence[str], tail: Sequence[str], *,
              limit: int, sep: str = "\n",
              measure: Callable[[str], int] = utf8_len,
              cut: Callable[[str, int], str] = truncate_utf8) -> str:
    """Joins head + body + tail within ``limit``; drops body lines from the end first.

    ``measure``/``cut`` count bytes by default (pass ``len``/``truncate_chars`` for characters).
    The head (what and who) and the tail are what a reader needs most, so they are kept whole
    when they fit; only when even they do not fit is the head cut on a character boundary.
    """
    kept = list(body)
    while True:
        text = sep.join([*head, *kept, *tail])
        if measure(text) <= limit or not kept:
            break
        kept.pop()
    if measure(text) <= limit:
        return text
    tail_text = sep.join(tail)
    room = limit - measure(tail_text) - measure(sep)
    if tail and room > 0:
        return cut(sep.join(head), room) + sep + tail_text
    return cut(text, limit)


def compact_json(value: Any) -> str:
    """JSON as platforms want it inside string params: compact, UTF-8, stable key order."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def fit_json_list(items: Sequence[Any], max_bytes: int,
                  shrink: Callable[[Any], Any] | None = None) -> str:
    """Serialises ``items`` as a JSON list of at most ``max_bytes``; never emits broken JSON.

    ``shrink`` may first shorten each item's strings; then items are dropped from the end.
    """
    kept = [shrink(i) for i in items] if shrink else list(items)
    while True:
        text = compact_json(kept)
        if utf8_len(text) <= max_bytes or not kept:
            return text
        kept.pop()
