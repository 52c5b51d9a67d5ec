"""How a request body arrived, for limits the platforms count in bytes of what was sent.

conformance W8: the platforms count text limits in bytes of the JSON they receive; a sender that
escapes Chinese as ``\\uXXXX`` spends six bytes on each character instead of three. The sandbox
counts a field the way it arrived (escaped or not), so an escaping sender meets the limit as
early as it would in production.
"""

from __future__ import annotations

import json
import re

_ESCAPED_NON_ASCII = re.compile(rb"\\u(?:00[89a-fA-F][0-9a-fA-F]|0[1-9a-fA-F][0-9a-fA-F]{2}|[1-9a-fA-F][0-9a-fA-F]{3})")


def escapes_non_ascii(raw: bytes) -> bool:
    """Whether the body spelled a non-ASCII character as a \\u escape."""
    return bool(_ESCAPED_NON_ASCII.search(raw))


def sent_bytes(value: object, escaped: bool) -> int:
    """The bytes ``value`` took in the body: its JSON text as the sender spelled it."""
    text = json.dumps(value, ensure_ascii=escaped, separators=(",", ":"))
    if isinstance(value, str):
        text = text[1:-1]  # the quotes are the JSON's, not the field's
    return len(text.encode("utf-8"))


def cut_to_sent_bytes(text: str, limit: int, escaped: bool) -> str:
    """What the platform keeps of ``text`` when it cuts at ``limit`` bytes as sent."""
    if sent_bytes(text, escaped) <= limit:
        return text
    out, used = [], 0
    for ch in text:
        cost = sent_bytes(ch, escaped)
        if used + cost > limit:
            break
        out.append(ch)
        used += cost
    return "".join(out)
