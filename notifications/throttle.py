"""The platforms' per-recipient limits (the windows), and a process-local sliding window over them.

WeCom silently drops app messages beyond 30 per member per minute and 1000 per hour; DingTalk
work notices allow 500 per user per day; group robots take 20 per minute. The delivery worker
takes its windows from ``limits`` here, but what was spent lives in the database
(store.send_budget), so several processes and hosts share one budget; ``RecipientThrottle``'s
own bookkeeping is the same arithmetic for one process (a tool, and the model the tests check the
windows against).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Mapping


@dataclass(frozen=True, slots=True)
class Window:
    limit: int
    seconds: float


DEFAULT_LIMITS: Mapping[str, tuple[Window, ...]] = {
    "wecom": (Window(30, 60), Window(1000, 3600)),
    "dingtalk": (Window(500, 86400),),
    "wecom_robot": (Window(20, 60),),
    "dingtalk_robot": (Window(20, 60),),
}


class RecipientThrottle:
    def __init__(self, limits: Mapping[str, tuple[Window, ...]] | None = None) -> None:
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self._sent: dict[tuple[str, str], deque[datetime]] = {}
        self._horizon = {ch: max(w.seconds for w in ws) for ch, ws in self.limits.items() if ws}

    @property
    def longest_window(self) -> float:
        return max(self._horizon.values(), default=0.0)

    def _trim(self, channel: str, recipient: str, now: datetime) -> deque[datetime]:
        times = self._sent.setdefault((channel, recipient), deque())
        horizon = now - timedelta(seconds=self._horizon.get(channel, 0.0))
        while times and times[0] <= horizon:
            times.popleft()
        return times

    def budget(self, channel: str, recipient: str, now: datetime) -> int | None:
        """How many more messages may go to this recipient now; None means no limit."""
        windows = self.limits.get(channel)
        if not windows:
            return None
        times = self._trim(channel, recipient, now)
        left = []
        for w in windows:
            start = now - timedelta(seconds=w.seconds)
            used = sum(1 for t in times if t > start)
            left.append(max(0, w.limit - used))
        return min(left)

    def record(self, channel: str, recipient: str, at: datetime) -> None:
        if channel in self.limits:
            self._trim(channel, recipient, at).append(at)

    def try_acquire(self, channel: str, recipient: str, now: datetime) -> bool:
        budget = self.budget(channel, recipient, now)
        if budget is not None and budget <= 0:
            return False
        self.record(channel, recipient, now)
        return True

    def next_free(self, channel: str, recipient: str, now: datetime) -> datetime:
        """The earliest instant at which one more message fits in every window."""
        windows = self.limits.get(channel) or ()
        times = self._trim(channel, recipient, now)
        at = now
        for w in windows:
            start = now - timedelta(seconds=w.seconds)
            inside = [t for t in times if t > start]
            if len(inside) >= w.limit:
                # The oldest send that must leave the window before one more fits.
                at = max(at, inside[len(inside) - w.limit] + timedelta(seconds=w.seconds))
        return at

    def replace(self, channel: str, recipient: str, times: Iterable[datetime]) -> None:
        """The recipient's window as the store knows it (every process's sends)."""
        if channel in self.limits:
            self._sent[(channel, recipient)] = deque(sorted(times))

    def seed(self, sends: Iterable[tuple[str, str, datetime]]) -> None:
        for channel, recipient, at in sends:
            self.record(channel, recipient, at)
