"""Callback verification and decryption (doc/90968), on wechatpy's WeChatCrypto.

Every failure becomes a `CallbackRejected` carrying the HTTP status and a short reason for the
log line: the route answers 4xx, never 500, whatever arrives.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

from bot.platforms.wecom.safexml import UnsafeXml, parse_xml

_NONCE_ALPHABET = string.ascii_letters + string.digits


class CallbackRejected(Exception):
    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.status = status
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class DecryptedCallback:
    fields: dict[str, Any]
    agent_id: str


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()


class CallbackCrypto:
    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token = token
        self.receive_id = receive_id
        self._crypto = WeChatCrypto(token, encoding_aes_key, receive_id)

    def _check_signature(self, sig: str, timestamp: str, nonce: str, encrypted: str) -> None:
        # Constant-time comparison first; wechatpy compares with != (and checks again below).
        expected = signature(self.token, timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected.encode(), sig.lower().encode("utf-8", "replace")):  # str: ASCII only
            raise CallbackRejected(403, "bad_signature")

    def verify_url(self, sig: str, timestamp: str, nonce: str, echostr: str) -> str:
        """GET check: returns the plaintext echostr to answer with."""
        self._check_signature(sig, timestamp, nonce, echostr)
        return self._decrypt(lambda: self._crypto.check_signature(sig, timestamp, nonce, echostr))

    def decrypt_body(self, sig: str, timestamp: str, nonce: str, body: bytes) -> DecryptedCallback:
        """POST: outer envelope -> signature -> AES -> receive id -> inner XML as a dict."""
        try:
            envelope = parse_xml(body)
        except UnsafeXml as e:
            raise CallbackRejected(400, "malformed_xml", str(e)) from None
        encrypted = envelope.get("Encrypt")
        if not isinstance(encrypted, str) or not encrypted.strip():
            raise CallbackRejected(400, "malformed_xml", "no <Encrypt> element")
        encrypted = encrypted.strip()
        self._check_signature(sig, timestamp, nonce, encrypted)
        # wechatpy accepts the already-parsed envelope, so its xmltodict never sees untrusted XML.
        plain = self._decrypt(lambda: self._crypto.decrypt_message({"Encrypt": encrypted}, sig,
                                                                   timestamp, nonce))
        try:
            fields = parse_xml(plain.encode("utf-8"))
        except UnsafeXml as e:
            raise CallbackRejected(400, "malformed_inner_xml", str(e)) from None
        agent = envelope.get("AgentID")
        return DecryptedCallback(fields=fields, agent_id=agent if isinstance(agent, str) else "")

    def _decrypt(self, fn: Any) -> str:
        try:
            plain = fn()
        except InvalidSignatureException:
            raise CallbackRejected(403, "bad_signature") from None
        except InvalidCorpIdException:
            # InvalidCorpIdException is not an InvalidSignatureException (wechatpy#799).
            raise CallbackRejected(403, "wrong_receive_id") from None
        except Exception as e:  # base64, block size, padding, length prefix, UTF-8: all garbage
            raise CallbackRejected(400, "undecryptable", type(e).__name__) from None
        if not isinstance(plain, str):
            raise CallbackRejected(400, "undecryptable", "no plaintext")
        return plain

    def encrypt_reply(self, xml_plain: str, now: datetime) -> str:
        """The encrypted passive reply envelope <xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/>."""
        nonce = "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(16))
        return self._crypto.encrypt_message(xml_plain, nonce, str(int(now.timestamp())))
