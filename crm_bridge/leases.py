"""Who holds leased work, across hosts: a process identity, and a heartbeat that renews leases
while their holder works.

Leases (inbox rows, firing timers, outbox rows being sent) carry an expiry; the holder renews
them while it works, so "expired" means "its holder stopped renewing" (dead, hung or cut off),
whatever host it runs on. Only then does another process take the work back, and every finishing
write is fenced on the lease (holder and state), so a former holder that wakes up late finishes
nothing another process took over.
"""

from __future__ import annotations

import os
import secrets
import socket
from functools import lru_cache


@lru_cache(maxsize=1)
def process_identity() -> str:
    """``host:pid:random``: unique across hosts and across a pid's reuse after a restart; the
    host and pid are there for people reading the rows (and for a same-host liveness shortcut)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


def holder_parts(owner: str) -> tuple[str, int | None]:
    """(host, pid) of an identity written by process_identity (or the older ``host:pid``)."""
    parts = owner.split(":")
    if len(parts) >= 3 and parts[-2].isdigit():
        return ":".join(parts[:-2]), int(parts[-2])
    if len(parts) >= 2 and parts[-1].isdigit():
        return ":".join(parts[:-1]), int(parts[-1])
    return owner, None
