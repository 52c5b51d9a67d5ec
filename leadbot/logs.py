"""Structured logging: JSON lines when not on a terminal, readable lines on one.

A processor masks phone numbers and drops secret-looking keys, so a careless log call cannot
leak a customer's number or a token into a shared log system.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from leadbot.masking import mask_phones_in, mask_secret

_SECRET_KEYS = {"token", "access_token", "secret", "app_secret", "password", "authorization",
                "encoding_aes_key", "aes_key", "api_token", "sign", "signature"}


def _scrub(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(event.items()):
        if key.lower() in _SECRET_KEYS:
            event[key] = mask_secret(str(value))
        elif isinstance(value, str) and key != "timestamp":
            event[key] = mask_phones_in(value)
    return event


def configure_logging(fmt: str = "auto", level: str = "info") -> None:
    json_lines = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    # Plain tracebacks only: rich/better-exceptions formatters print local variables, and
    # locals hold settings with secrets.
    renderer: Any = (structlog.processors.JSONRenderer(ensure_ascii=False) if json_lines
                     else structlog.dev.ConsoleRenderer(colors=False,
                                                        exception_formatter=structlog.dev.plain_traceback))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks if json_lines else structlog.processors.format_exc_info,
            _scrub,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
