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
# minute), work notices (1431xx/1432xx QPM), custom robot "send too fast" (130101).
# conformance D2 (dt/server-api-error-codes-1): 90001, 90003 and 90004 mean "all calls are
# temporarily refused" (per app / per corp / per API): throttles, never a permanent refusal.
# conformance D1 (dt/custom-robots-send-group-messages): 410100 is the custom robot's
# "over 20 a minute" answer, and the robot then stays blocked for 10 minutes.
CUSTOM_ROBOT_THROTTLED = 410100
THROTTLE_ERRCODES = frozenset({90001, 90002, 90003, 90004, 90005, 90006, 90018, 90019, 143103, 143104,
                               143203, 143204, 130101, 90030, CUSTOM_ROBOT_THROTTLED})
# conformance D1 (dt/group-template-robot-message): 660026 is "send failed, please retry", a
# transient failure of one message, not a throttle of the robot.
CUSTOM_ROBOT_RETRY = 660026
TRANSIENT_ERRCODES = frozenset({-1, 1430003, CUSTOM_ROBOT_RETRY})
# Answers that block a whole custom robot (every sender) for a while, not just this message.
ROBOT_BLOCK_ERRCODES = frozenset({CUSTOM_ROBOT_THROTTLED, 130101})
ROBOT_BLOCK_SECONDS = 600.0
# conformance D6 (dt/call-frequency-limit): the IP flood block lasts 5 minutes.
PUNISH_SECONDS = 300.0
# v1.0 API codes.
TOKEN_CODES = frozenset({"InvalidAuthentication", "InvalidAccessToken", "invalidAccessToken",
                         "Unauthorized", "InvalidToken"})
THROTTLE_CODES = frozenset({"send.too.fast", "too.many.group", "too.many.people", "send.byToken.tooFast",
                            "Throttling", "Throttling.Api", "Throttling.User",
                            "Forbidden.AccessDenied.QpsLimitForApi",
                            "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
                            "Forbidden.AccessDenied.IpQpsLimit",
                            # conformance D2 (dt/server-api-error-codes-1): per-minute limits of
                            # the new API, answered as HTTP 403.
                            "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi",
                            "Forbidden.AccessDenied.QpmLimitForSuitekeyAndOrgAndApi"})
# Per-minute limits last until the minute turns; per-second ones a moment.
QPM_RETRY_SECONDS = 60.0


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

    def __init__(self, message: str, *, retry_after: float | None = None, scope: str = "app",
                 **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        # What the throttle holds back: "recipient" (this robot), "app" (every call of this app
        # or IP), "message" (only this one).
        self.scope = scope


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
    if errcode_for_kind in ROBOT_BLOCK_ERRCODES:
        return ThrottleError(message or "custom robot throttled", retry_after=ROBOT_BLOCK_SECONDS,
                             scope="recipient", **kw)
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
    if "QpmLimit" in code:
        return ThrottleError(message or "per-minute limit", retry_after=QPM_RETRY_SECONDS, **kw)
    if status == 429 or code in THROTTLE_CODES or "QpsLimit" in code or code.startswith("Throttling"):
        return ThrottleError(message or "rate limited", **kw)
    if status >= 500:
        return TransientError(message or "server error", **kw)
    return PermanentError(message or "request refused", **kw)


def classify_punish(body: Mapping[str, Any], status: int = 200) -> DingTalkError | None:
    """conformance D6 (dt/call-frequency-limit): the IP flood block may come as a JSON body
    ``{"status":1111,"wait":5,"punish":"deny"}``, even with HTTP 200 and no errcode: a
    throttle of every call from this IP, never a success."""
    if "punish" not in body:
        return None
    return ThrottleError("blocked by DingTalk's flood protection", retry_after=PUNISH_SECONDS, code="punish",
                         status=status, body=body)


def classify_text(status: int, text: str) -> DingTalkError:
    """A non-JSON answer: DingTalk's IP flood block is an HTML page with "punish":"deny"."""
    snippet = text[:200]
    if "punish" in text or status == 429:
        return ThrottleError("blocked by DingTalk's flood protection", retry_after=PUNISH_SECONDS, code="punish",
                             status=status)
    if status >= 500 or status == 0:
        return TransientError(f"unexpected answer: {snippet!r}", code=status, status=status)
    return PermanentError(f"unexpected answer: {snippet!r}", code=status, status=status)
