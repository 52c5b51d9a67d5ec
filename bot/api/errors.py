"""JSON error answers with one shape everywhere: {"error": code, "message": human text}."""

from __future__ import annotations

from typing import Any

from aiohttp import web


def json_error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": code, "message": message, **extra}, status=status,
                             dumps=_dumps)


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False)
