"""Platform throttles that hold back a whole scope, shared by every leadbot process.

conformance D1 (dt/custom-robots-send-group-messages): a DingTalk custom robot that went over
20 messages a minute answers 410100 and stays blocked for 10 minutes, whoever sends; D2/D6:
per-minute limits (403 Forbidden.AccessDenied.Qpm…, 90001/90003/90004) and the IP flood block
hold back every call of the app for a while. The delivery worker records such a block here and
holds the scope's rows until it ends, in every process, instead of each process finding out by
being refused again.

Stored in the ``kv`` table (store.kv) under ``block:<channel>:<recipient digest or *>`` (a
digest: a robot's recipient is its webhook, whose access_token is a secret): one small store
behind two functions, so the per-recipient send budgets of #22 can take it over.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from store.kv import KeyValueStore
from leadbot.clock import Clock

PREFIX = "block:"
APP_WIDE = "*"


def recipient_ref(recipient: str) -> str:
    """How a recipient is named in a block: APP_WIDE as is, anyone else by a digest."""
    if recipient == APP_WIDE:
        return APP_WIDE
    return hashlib.sha256(recipient.encode("utf-8")).hexdigest()[:32]


def scope_key(channel: str, recipient: str = APP_WIDE) -> str:
    return f"{PREFIX}{channel}:{recipient_ref(recipient)}"


class SendBlocks:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self.kv = KeyValueStore(engine, clock)

    async def block(self, channel: str, recipient: str, until: datetime, reason: str = "") -> None:
        """Holds back ``channel`` to ``recipient`` (APP_WIDE: the whole channel) until ``until``;
        a later block never shortens an earlier, longer one."""
        key = scope_key(channel, recipient)
        current = await self.kv.get(key)
        if current is not None and current.expires_at is not None and current.expires_at >= until:
            return
        await self.kv.set(key, reason[:500] or "throttled", until)

    async def active(self) -> dict[tuple[str, str], datetime]:
        """(channel, recipient_ref) -> blocked until, for every live block."""
        out: dict[tuple[str, str], datetime] = {}
        for key, entry in (await self.kv.live_with_prefix(PREFIX)).items():
            channel, _, recipient = key[len(PREFIX):].partition(":")
            if entry.expires_at is not None:
                out[(channel, recipient)] = entry.expires_at
        return out
