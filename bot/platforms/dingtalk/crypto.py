"""DingTalk callback crypto and signatures.

The AES part of event subscriptions is dingtalk-sdk's DingTalkCrypto (checked against the official
vectors); the HMAC signatures of robot messages, card callbacks and custom robots are short enough
to write out, with constant-time comparisons.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

from dingtalk.core.exceptions import InvalidCorpIdOrSuiteKeyException, InvalidSignatureException
from dingtalk.crypto import DingTalkCrypto, PrpCrypto

_ALNUM = string.ascii_letters + string.digits


class CallbackRejected(Exception):
    """A callback that must be refused; ``status`` is the 4xx to answer, ``reason`` goes to the log."""

    def __init__(self, reason: str, status: int = 400, message: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.message = message or reason.replace("_", " ")


def random_text(length: int = 16) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


class _SecurePrpCrypto(PrpCrypto):
    # dingtalk-sdk draws the 16-byte prefix from `random`; the secrets module is the right source.
    def get_random_string(self) -> str:
        return random_text(16)


class _Crypto(DingTalkCrypto):
    def encrypt_message(self, msg, nonce=None, timestamp=None):  # type: ignore[override]
        return self._encrypt_message(msg, nonce, timestamp, _SecurePrpCrypto)


def event_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """sha1 over the sorted concatenation of token, timestamp, nonce and the ciphertext."""
    parts = sorted(x.encode() for x in (token, timestamp, nonce, encrypt))
    return hashlib.sha1(b"".join(parts)).hexdigest()


@dataclass(frozen=True, slots=True)
class Decrypted:
    plaintext: str
    receive_id: str


class EventCipher:
    """Verifies, decrypts and answers HTTP event-subscription callbacks.

    The receive id inside the ciphertext is the AppKey for subscriptions made in the developer
    console and the CorpId for legacy register_call_back ones; each is tried in turn."""

    def __init__(self, token: str, aes_key: str, receive_ids: Sequence[str]) -> None:
        if not token or not aes_key or len(aes_key) != 43:
            raise ValueError("dingtalk event callbacks need token and a 43-character aes_key")
        self.token = token
        self.receive_ids = tuple(dict.fromkeys(r for r in receive_ids if r))
        if not self.receive_ids:
            raise ValueError("dingtalk event callbacks need app_key or corp_id")
        self._cryptos = {rid: _Crypto(token, aes_key, rid) for rid in self.receive_ids}

    def decrypt(self, signature: str, timestamp: str, nonce: str, encrypt: str) -> Decrypted:
        expected = event_signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode("utf-8", "replace")):
            raise CallbackRejected("bad_signature", 403, "signature does not match")
        for rid, crypto in self._cryptos.items():
            try:
                plain = crypto.decrypt_encrypt_str(expected, timestamp, nonce, encrypt)
            except InvalidCorpIdOrSuiteKeyException:
                continue
            except InvalidSignatureException:  # pragma: no cover - checked above
                raise CallbackRejected("bad_signature", 403, "signature does not match") from None
            except Exception as e:
                # Bad base64, a length that is no multiple of the block, a broken padding or
                # length field: a malformed (or forged but correctly signed) body, never a 500.
                raise CallbackRejected("bad_ciphertext", 400, f"cannot decrypt ({type(e).__name__})") from None
            return Decrypted(plain, rid)
        raise CallbackRejected("unknown_receive_id", 403, "encrypted for another app or corp")

    def encrypt_reply(self, text: str, receive_id: str, timestamp: str, nonce: str | None = None) -> dict[str, str]:
        """The JSON DingTalk expects back: {msg_signature, timeStamp, nonce, encrypt}."""
        crypto = self._cryptos.get(receive_id) or self._cryptos[self.receive_ids[0]]
        out = crypto.encrypt_message(text, nonce or random_text(16), timestamp)
        return {"msg_signature": out["msg_signature"], "timeStamp": str(out["timeStamp"]),
                "nonce": out["nonce"], "encrypt": out["encrypt"]}


def _hmac_b64(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def robot_sign(timestamp: str, app_secret: str) -> str:
    """App-robot HTTP messages: Base64(HMAC-SHA256(appSecret, timestamp + "\\n" + appSecret))."""
    return _hmac_b64(app_secret, f"{timestamp}\n{app_secret}")


def custom_robot_sign(timestamp: str, secret: str) -> str:
    """Custom group robots: the same construction with the robot's SEC… secret (URL-encode it)."""
    return _hmac_b64(secret, f"{timestamp}\n{secret}")


def card_sign(timestamp: str, api_secret: str) -> str:
    """Interactive-card HTTP callbacks: Base64(HMAC-SHA256(apiSecret, timestamp))."""
    return _hmac_b64(api_secret, timestamp)


def same_sign(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.strip().encode("utf-8", "replace"))  # headers may carry surrogates


def parse_epoch(value: str | int | None) -> datetime | None:
    """A DingTalk timestamp: milliseconds in most places, seconds in a few (and in old docs)."""
    if value is None:
        return None
    text = str(value).strip()
    if not text.isdigit() or len(text) > 16:
        return None
    n = int(text)
    seconds = n / 1000.0 if n >= 100_000_000_000 else float(n)
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def check_fresh(when: datetime | None, now: datetime, window_seconds: float, *, what: str = "timestamp") -> None:
    """Refuses a missing or out-of-window timestamp; a window of 0 turns the check off."""
    if window_seconds <= 0:
        return
    if when is None:
        raise CallbackRejected(f"bad_{what}", 400, f"missing or malformed {what}")
    if abs((now - when).total_seconds()) > window_seconds:
        raise CallbackRejected(f"stale_{what}", 403, f"{what} outside the accepted window")


def loads_object(raw: bytes | str) -> dict:
    """A JSON object or CallbackRejected (never a bare ValueError that would become a 500)."""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deeply
        raise CallbackRejected("malformed_json", 400, "body is not JSON") from None
    if not isinstance(value, dict):
        raise CallbackRejected("malformed_json", 400, "body is not a JSON object")
    try:
        clean = _storable(value)
    except RecursionError:
        clean = False
    if not clean:
        # Valid JSON, but "\ud800" alone is not Unicode and no platform sends NUL; nothing
        # downstream (PostgreSQL text, hashing, the reply) could handle either.
        raise CallbackRejected("malformed_json", 400, "lone surrogate or NUL in a string")
    return value


def _storable(value: object) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")  # fails on a lone surrogate
        except UnicodeEncodeError:
            return False
        return "\x00" not in value
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    return True
