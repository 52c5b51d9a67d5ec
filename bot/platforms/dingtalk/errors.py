"""DingTalk API errors, sorted into what the caller should do about them.

DingTalk answers in two dialects: the old oapi host says ``{"errcode": N, "errmsg": …}`` with
HTTP 200, the v1.0 host (api.dingtalk.com) says ``{"code": "…", "message": …}`` with a 4xx/5xx.
Both collapse here into four kinds:

- ``token``: the access token is invalid or expired -> fetch a new one and retry once;
- ``throttle``: a rate limit -> retry after a pause (the client backs off, the outbox later);
- ``transient``: 5xx, network, "system busy" -> retry later;
- ``permanent``: bad parameters, unknown user, missing permission, daily caps -> do not retry.
"""

from __future__ import annotations

from typing import Any, Mapping

# Old API: invalid/expired token. 88 is DingTalk's "see sub_code" wrapper (sub_code 40014).
TOKEN_ERRCODES = frozenset({40001, 40014, 42001, 33001, 41001})
# Old API rate limits: platform-wide (90002), per app and API (90018 per second, 90006 per
# minute), work notices (1431xx/1432xx QPM), custom robot "send too fast" (130101, 660026).
THROTTLE_ERRCODES = frozenset({90002, 90005, 90006, 90018, 90019, 143103, 143104, 143203, 143204,
                               130101, 660026, 90030})
TRANSIENT_ERRCODES = frozenset({-1, 1430003})
# v1.0 API codes.
TOKEN_CODES = frozenset({"InvalidAuthentication", "InvalidAccessToken", "invalidAccessToken",
                         "Unauthorized", "InvalidToken"})
THROTTLE_CODES = frozenset({"send.too.fast", "too.many.group", "too.many.people", "send.byToken.tooFast",
                            "Throttling", "Throttling.Api", "Throttling.User",
                            "Forbidden.AccessDenied.QpsLimitForApi",
                            "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
                            "Forbidden.AccessDenied.IpQpsLimit"})


class DingTalkError(Exception):
    kind = "permanent"
    retryable = False

    def __init__(self, message: str, *, code: Any = None, status: int = 0,
                 body: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.body = dict(body or {})

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status and self.status != 200 else ""
        return f"dingtalk {self.kind} error {self.code}{where}: {self.message}"


class TokenError(DingTalkError):
    kind = "token"
    retryable = True


class ThrottleError(DingTalkError):
    kind = "throttle"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class TransientError(DingTalkError):
    kind = "transient"
    retryable = True


class PermanentError(DingTalkError):
    kind = "permanent"
    retryable = False


class CredentialsError(PermanentError):
    """The app key/secret were refused: nothing will work until the config is fixed."""


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def classify_oapi(body: Mapping[str, Any], status: int = 200) -> DingTalkError | None:
    """None when the old-API answer is a success (errcode 0 or absent)."""
    errcode = _int(body.get("errcode", 0))
    if errcode in (0, None):
        return None
    message = str(body.get("errmsg") or body.get("sub_msg") or "")
    if errcode == 88:
        # "业务错误，看 sub_code": the real reason is the sub code.
        sub = _int(body.get("sub_code"))
        if sub is not None:
            errcode_for_kind = sub
        else:
            errcode_for_kind = errcode
    else:
        errcode_for_kind = errcode
    kw = {"code": errcode, "status": status, "body": body}
    if errcode_for_kind in TOKEN_ERRCODES:
        return TokenError(message or "invalid access token", **kw)
    if errcode_for_kind in THROTTLE_ERRCODES:
        return ThrottleError(message or "rate limited", **kw)
    if errcode_for_kind in TRANSIENT_ERRCODES:
        return TransientError(message or "system busy", **kw)
    if errcode_for_kind in (40089, 40096, 40095):
        return CredentialsError(message or "invalid appkey or appsecret", **kw)
    return PermanentError(message or "request refused", **kw)


def classify_v1(status: int, body: Mapping[str, Any]) -> DingTalkError | None:
    """None for a 2xx answer of the v1.0 API."""
    if 200 <= status < 300:
        return None
    code = str(body.get("code") or "")
    message = str(body.get("message") or body.get("msg") or "")
    kw = {"code": code or status, "status": status, "body": body}
    if code == "invalidClientIdOrSecret":
        return CredentialsError(message or "invalid clientId or clientSecret", **kw)
    if status == 401 or code in TOKEN_CODES:
        return TokenError(message or "invalid access token", **kw)
    if status == 429 or code in THROTTLE_CODES or "QpsLimit" in code or code.startswith("Throttling"):
        return ThrottleError(message or "rate limited", **kw)
    if status >= 500:
        return TransientError(message or "server error", **kw)
    return PermanentError(message or "request refused", **kw)


def classify_text(status: int, text: str) -> DingTalkError:
    """A non-JSON answer: DingTalk's IP flood block is an HTML page with "punish":"deny"."""
    snippet = text[:200]
    if "punish" in text or status == 429:
        return ThrottleError("blocked by DingTalk's flood protection", retry_after=300.0, code="punish",
                             status=status)
    if status >= 500 or status == 0:
        return TransientError(f"unexpected answer: {snippet!r}", code=status, status=status)
    return PermanentError(f"unexpected answer: {snippet!r}", code=status, status=status)
