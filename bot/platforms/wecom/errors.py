"""WeCom errcodes and what to do about them: the one place that classifies them.

The outbox (and anything else that retries) asks `classify(errcode)` or reads `WeComError.kind`
instead of keeping its own list of numbers.
"""

from __future__ import annotations

from enum import Enum

# Token problems: refetch the access_token and retry once.
TOKEN_ERRCODES = frozenset({40014, 41001, 42001})
# The platform asks us to slow down or is busy: back off and retry.
THROTTLE_ERRCODES = frozenset({45009, 45033, -1})

# Permanent failures worth naming (anything not token/throttle is permanent, these are just known).
ALL_USERS_INVALID = 81013
INVALID_WEBHOOK = 93000
NOT_EXTERNAL_CONTACT = 84061
WELCOME_CODE_USED = 41051
BAD_SECRET = 40001
UNTRUSTED_IP = 60020
# WeCom documents no dedicated code for a spent or expired response_code; it answers a generic
# invalid-parameter error, which the sandbox reproduces.
INVALID_PARAMETER = 40035

PERMANENT_ERRCODES = frozenset({ALL_USERS_INVALID, INVALID_WEBHOOK, NOT_EXTERNAL_CONTACT,
                                WELCOME_CODE_USED, BAD_SECRET, UNTRUSTED_IP, INVALID_PARAMETER,
                                40003, 40013, 40056, 60111})


class ErrorKind(str, Enum):
    TOKEN = "retryable_token"
    THROTTLE = "retryable_throttle"
    PERMANENT = "permanent"
    TRANSIENT = "transient"  # network / HTTP-level failure: nothing known about the outcome


def classify(errcode: int | None) -> ErrorKind:
    if errcode is None:
        return ErrorKind.TRANSIENT
    if errcode in TOKEN_ERRCODES:
        return ErrorKind.TOKEN
    if errcode in THROTTLE_ERRCODES:
        return ErrorKind.THROTTLE
    # WeCom errcodes are deterministic answers about the request itself: repeating it unchanged
    # gives the same answer, so an unknown code is treated as permanent, not retried blindly.
    return ErrorKind.PERMANENT


def retryable_token(errcode: int | None) -> bool:
    return classify(errcode) is ErrorKind.TOKEN


def retryable_throttle(errcode: int | None) -> bool:
    return classify(errcode) is ErrorKind.THROTTLE


def permanent(errcode: int | None) -> bool:
    return classify(errcode) is ErrorKind.PERMANENT


class WeComError(Exception):
    """An answer from WeCom with errcode != 0 (after the client's own retries)."""

    def __init__(self, errcode: int | None, errmsg: str, *, api: str = "") -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.api = api
        super().__init__(f"wecom {api or 'api'}: errcode {errcode}: {errmsg}")

    @property
    def kind(self) -> ErrorKind:
        return classify(self.errcode)

    @property
    def permanent(self) -> bool:
        return self.kind is ErrorKind.PERMANENT

    @property
    def retryable(self) -> bool:
        return not self.permanent


class WeComTransportError(WeComError):
    """No usable answer (connection failure, timeout, HTTP error, body that is not JSON)."""

    def __init__(self, message: str, *, api: str = "") -> None:
        super().__init__(None, message, api=api)
