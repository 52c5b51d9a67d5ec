"""FakeSender: an in-memory platform for tests and the benchmark.

It behaves like the platforms where it matters to the outbox: it keeps what each recipient saw,
treats a repeated ``dedupe_id`` as the same message (WeCom task_id, DingTalk outTrackId), and
can be told to fail for a recipient (permanently, card unsupported, invalid user, transiently)
or to crash the process right before or right after the platform accepted a message.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from notifications.sender import DeliveryResult, OutboundMessage


class SimulatedCrash(BaseException):
    """Raised through the worker like a process dying: nothing after it runs."""


@dataclass
class FakeSender:
    latency: float = 0.0
    platform_dedupe: bool = True
    # (channel, recipient) -> error kind; ("wecom", "*") fails the whole channel.
    failures: dict[tuple[str, str], str] = field(default_factory=dict)
    # (channel, recipient) -> error kind, only for form "card".
    card_failures: dict[tuple[str, str], str] = field(default_factory=dict)
    transient: dict[str, int] = field(default_factory=dict)  # key -> failures left before success
    crash_before: set[str] = field(default_factory=set)  # keys: die before the platform gets it
    crash_after: set[str] = field(default_factory=set)  # keys: die after the platform accepted it
    calls: list[OutboundMessage] = field(default_factory=list)
    delivered: list[OutboundMessage] = field(default_factory=list)
    _seen: dict[str, dict[str, Any]] = field(default_factory=dict)

    def _failure(self, m: OutboundMessage) -> str | None:
        for key in ((m.channel, m.recipient), (m.channel, "*")):
            if key in self.failures:
                return self.failures[key]
            if m.form == "card" and key in self.card_failures:
                return self.card_failures[key]
        return None

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        self.calls.append(message)
        if self.latency:
            await asyncio.sleep(self.latency)
        if message.key in self.crash_before:
            self.crash_before.discard(message.key)
            raise SimulatedCrash(message.key)
        kind = self._failure(message)
        if kind is not None:
            return DeliveryResult.failed(kind, f"fake {kind} for {message.recipient}")
        left = self.transient.get(message.key, 0)
        if left:
            self.transient[message.key] = left - 1
            return DeliveryResult.failed("retry", "fake -1 system busy")
        if self.platform_dedupe and message.dedupe_id in self._seen:
            return DeliveryResult.sent(**self._seen[message.dedupe_id])
        n = len(self.delivered) + 1
        ids: dict[str, Any] = {"msgid": f"msg{n}"}
        if message.form == "card":
            ids.update({"task_id": message.dedupe_id, "response_code": f"rc{n}"} if message.channel.startswith("wecom")
                       else {"outTrackId": message.dedupe_id})
        self._seen[message.dedupe_id] = ids
        self.delivered.append(message)
        if message.key in self.crash_after:
            self.crash_after.discard(message.key)
            raise SimulatedCrash(message.key)
        return DeliveryResult.sent(**ids)

    def seen_by(self, recipient: str, channel: str | None = None) -> list[OutboundMessage]:
        return [m for m in self.delivered if m.recipient == recipient and (channel is None or m.channel == channel)]
