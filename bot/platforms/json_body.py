"""Request bodies as both platforms want them.

conformance W8 (wechatpy client/base.py; httprunner/httprunner#83) and DingTalk's custom robot
page ("发起POST请求时，必须将字符集编码设置成UTF-8", dt/custom-robots-send-group-messages): JSON
with Chinese goes out as UTF-8 text, not ``\\uXXXX`` escapes (aiohttp's ``json=`` escapes every
non-ASCII character, six bytes for each, and the platforms count their limits in bytes of what
arrives). Limits are therefore counted with ``utf8_len`` on the text that is sent.
"""

from __future__ import annotations

import json
from typing import Any

JSON_UTF8 = {"Content-Type": "application/json; charset=utf-8"}


def json_bytes(body: Any) -> tuple[bytes | None, dict[str, str]]:
    """(request body, headers) for ``body``; None sends no body."""
    if body is None:
        return None, {}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), dict(JSON_UTF8)


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))
