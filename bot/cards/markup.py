"""Making user-supplied text inert inside markdown and HTML-ish platform fields.

Customer names and remarks come from web forms: a "<" or "*" in them must not turn into markup.
"""

from __future__ import annotations

import html

# Markdown on WeCom and DingTalk is not CommonMark, and neither documents backslash escapes, so
# a backslash could show up literally. Full-width look-alikes read the same and are never markup.
# "<" and ">" matter most: DingTalk renders HTML on PC and shows a blank on mobile.
_MARKDOWN_LOOKALIKES = str.maketrans({
    "<": "＜", ">": "＞", "[": "［", "]": "］", "*": "＊", "_": "＿", "`": "ˋ", "|": "｜",
    "~": "～",
})


def markdown_text(text: str) -> str:
    """User text made safe for WeCom/DingTalk markdown (never used on URLs).

    "#" only makes a heading at the start of a line, so "线索 #1024" keeps its plain "#".
    """
    safe = text.translate(_MARKDOWN_LOOKALIKES)
    stripped = safe.lstrip()
    if stripped.startswith("#"):
        safe = safe[: len(safe) - len(stripped)] + "＃" + stripped[1:]
    return safe


def html_text(text: str) -> str:
    """User text made safe inside WeCom textcard's <div> description."""
    return html.escape(text, quote=False)
