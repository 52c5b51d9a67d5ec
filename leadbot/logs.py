"""Structured logging: JSON lines when not on a terminal, readable lines on one.

What a log line may hold is decided here, not at each call site:
- Tracebacks are plain text (traceback.format_exception): never a frame's locals, which hold the
  Settings object, request bodies and customers' phones. structlog's dict_tracebacks serialised
  every frame's locals; it is not used.
- Every string in an event (the message, keys' values at any depth, the traceback text) has each
  configured secret replaced and phone-like digit runs masked; secret-named keys are masked whole.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

import structlog

from leadbot.masking import mask_phones_in, mask_secret

_SECRET_KEYS = {"token", "access_token", "secret", "app_secret", "password", "authorization",
                "encoding_aes_key", "aes_key", "api_token", "sign", "signature"}
# Settings keys whose values are secrets (a name containing one of these words).
_SECRET_WORDS = ("token", "secret", "password", "aes_key", "webhook", "robot_key", "secret_key")
_MIN_SECRET = 4  # shorter values would mask ordinary words


def secrets_of(settings: Any) -> tuple[str, ...]:
    """Every configured secret value in a Settings object (tokens, app secrets, AES keys, robot
    webhooks that carry access tokens, intake source tokens), longest first."""
    found: set[str] = set()

    def collect(value: Any, secret: bool) -> None:
        if isinstance(value, str):
            if secret and len(value) >= _MIN_SECRET:
                found.add(value)
            elif "://" in value and "@" in value:
                # A database URL's password.
                try:
                    password = urlsplit(value).password
                except ValueError:
                    password = None
                if password and len(password) >= _MIN_SECRET:
                    found.add(password)
        elif dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                collect(getattr(value, f.name), secret or _is_secret_name(f.name))
        elif isinstance(value, Mapping):
            for k, v in value.items():
                collect(v, secret or _is_secret_name(str(k)))
        elif isinstance(value, (list, tuple)):
            for v in value:
                collect(v, secret)

    collect(settings, False)
    return tuple(sorted(found, key=len, reverse=True))


def _is_secret_name(name: str) -> bool:
    low = name.lower()
    return any(word in low for word in _SECRET_WORDS)


class Scrubber:
    """The structlog processor that makes an event safe to write."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = tuple(sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True))

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, mask_secret(secret))
        return mask_phones_in(value)

    def value(self, value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if depth > 8:
            return "…"
        if isinstance(value, Mapping):
            return {str(k): (mask_secret(str(v)) if str(k).lower() in _SECRET_KEYS else self.value(v, depth + 1))
                    for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self.value(v, depth + 1) for v in value]
        if value is None or isinstance(value, (bool, int, float)):
            return value
        # Anything else (an object someone passed) is logged as its text, scrubbed: never as a
        # structure a renderer would walk.
        return self.text(str(value))

    def __call__(self, _: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
        for key, value in list(event.items()):
            if key == "timestamp":
                continue
            if key.lower() in _SECRET_KEYS:
                event[key] = mask_secret(str(value))
            else:
                event[key] = self.value(value)
        return event


def configure_logging(fmt: str = "auto", level: str = "info", *, secrets: Iterable[str] = ()) -> None:
    """`secrets`: values to blank wherever they appear (`secrets_of(settings)`)."""
    json_lines = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (structlog.processors.JSONRenderer(ensure_ascii=False) if json_lines
                     else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # The traceback as plain text (no locals) before scrubbing, so the scrubber sees it.
            structlog.processors.format_exc_info,
            Scrubber(secrets),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
