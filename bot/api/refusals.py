"""How often an unauthenticated client's refused requests may cost us a database write.

A forged or expired /a/{token} link is refused without touching a lead; auditing every refusal
let one client write ~900 audit rows a second. Per client address, the first refusal of a window
is audited, the rest only counted, and a client past `limit` refusals in the window is answered
429 without any work at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

WINDOW_SECONDS = 60.0
MAX_CLIENTS = 10_000  # memory bound: the table starts over when this many addresses are tracked


@dataclass
class _Window:
    started: datetime
    count: int = 0


@dataclass
class RefusalLimiter:
    limit: int = 30
    window: float = WINDOW_SECONDS
    _clients: dict[str, _Window] = field(default_factory=dict)

    def note(self, client: str, now: datetime) -> tuple[bool, bool]:
        """Records one refusal for client: (audit it?, over the limit?)."""
        entry = self._clients.get(client)
        if entry is None or (now - entry.started).total_seconds() >= self.window:
            if len(self._clients) >= MAX_CLIENTS:
                self._clients.clear()
            entry = self._clients[client] = _Window(now)
        entry.count += 1
        return entry.count == 1, entry.count > self.limit

    def blocked(self, client: str, now: datetime) -> bool:
        entry = self._clients.get(client)
        return (entry is not None and (now - entry.started).total_seconds() < self.window
                and entry.count >= self.limit)

    def retry_after(self, client: str, now: datetime) -> int:
        entry = self._clients.get(client)
        if entry is None:
            return 0
        return max(1, int(self.window - (now - entry.started).total_seconds()) + 1)
