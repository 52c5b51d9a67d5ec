"""Signed, expiring action tokens bound to their recipient.

Every button key and every H5 link carries one: `<action>:<token>`. The token says which action
on which lead for whom until when, and an HMAC proves leadbot issued it. A token is compact
(WeCom button keys are capped at 1024 bytes, DingTalk card params at 1 KB) and URL-safe.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from bot.cards.model import ACTIONS as BUTTON_ACTIONS

# A token names a button's action (bot/cards/model.py holds that vocabulary), or one only the H5
# page signs: "open" (the page itself) and "contact" (recorded first contact).
PAGE_ACTIONS = ("open", "contact")
ACTIONS = BUTTON_ACTIONS + PAGE_ACTIONS


class TokenError(Exception):
    """kind: malformed | forged | expired | wrong_action"""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class ActionClaims:
    action: str
    lead_id: int
    audience: str  # "rep:<id>" for a personal card, "team:<id>" for a pool group card
    expires_at: datetime
    args: Mapping[str, Any] = field(default_factory=dict)

    @property
    def rep_id(self) -> int | None:
        kind, _, value = self.audience.partition(":")
        return int(value) if kind == "rep" and value.isdigit() else None

    @property
    def team_id(self) -> int | None:
        kind, _, value = self.audience.partition(":")
        return int(value) if kind == "team" and value.isdigit() else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ActionSigner:
    MAC_BYTES = 16  # 128-bit tag: unforgeable in practice, and keeps keys short

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("action token secret must be at least 16 bytes")
        self._secret = secret

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[: self.MAC_BYTES]

    def sign(self, action: str, lead_id: int, audience: str, expires_at: datetime,
             args: Mapping[str, Any] | None = None) -> str:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        claims: dict[str, Any] = {"a": action, "l": lead_id, "u": audience, "e": int(expires_at.timestamp())}
        if args:
            claims["x"] = dict(args)
        body = json.dumps(claims, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def key(self, action: str, lead_id: int, audience: str, expires_at: datetime,
            args: Mapping[str, Any] | None = None) -> str:
        """The button key: `<action>:<token>`, the convention outside tests rely on."""
        return f"{action}:{self.sign(action, lead_id, audience, expires_at, args)}"

    def verify(self, token: str, now: datetime, action: str | None = None) -> ActionClaims:
        body_part, sep, mac_part = token.strip().partition(".")
        if not sep or not body_part or not mac_part or len(token) > 2048:
            raise TokenError("malformed", "not an action token")
        try:
            body = _unb64(body_part)
            mac = _unb64(mac_part)
        except (ValueError, TypeError):
            raise TokenError("malformed", "not an action token") from None
        if not hmac.compare_digest(mac, self._mac(body)):
            raise TokenError("forged", "signature does not match")
        try:
            claims = json.loads(body)
            result = ActionClaims(action=str(claims["a"]), lead_id=int(claims["l"]), audience=str(claims["u"]),
                                  expires_at=datetime.fromtimestamp(int(claims["e"]), timezone.utc),
                                  args=dict(claims.get("x") or {}))
        except (ValueError, KeyError, TypeError):
            raise TokenError("malformed", "token content is unreadable") from None
        if action is not None and result.action != action:
            raise TokenError("wrong_action", f"token is for {result.action}, not {action}")
        if now >= result.expires_at:
            raise TokenError("expired", "token has expired")
        return result

    def parse_key(self, key: str, now: datetime) -> ActionClaims:
        """Verifies a whole button key; the action before the colon must match the token's."""
        action, sep, token = key.partition(":")
        if not sep:
            raise TokenError("malformed", "button key has no action prefix")
        return self.verify(token, now, action=action)
