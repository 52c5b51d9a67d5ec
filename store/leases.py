"""Who holds leased work, across hosts: a process identity, and a heartbeat that renews leases
while their holder works.

Leases (inbox rows, firing timers, outbox rows being sent) carry an expiry; the holder renews
them while it works, so "expired" means "its holder stopped renewing" (dead, hung or cut off),
whatever host it runs on. Only then does another process take the work back, and every finishing
write is fenced on the lease (holder and state), so a former holder that wakes up late finishes
nothing another process took over.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from functools import lru_cache
from typing import Any, Awaitable, Callable


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


class Heartbeat:
    """Renews a lease while its holder works: ``async with Heartbeat(renew, every): ...``.

    ``renew`` returns whether the lease is still held; once it says no (another process took the
    work back after the lease ran out unrenewed: this one was hung or cut off), ``lost`` is set
    and renewing stops. The finishing writes are fenced on the lease anyway: ``lost`` is for
    logs and for giving up early. The interval is real time (it paces database writes); what the
    lease's expiry means is decided by the store's clock."""

    def __init__(self, renew: Callable[[], Awaitable[bool]], every: float, *, log: Any = None,
                 name: str = "lease") -> None:
        if every <= 0:
            raise ValueError("heartbeat interval must be positive")
        self.renew = renew
        self.every = every
        self.log = log
        self.name = name
        self.lost = False
        self.beats = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                held = await self.renew()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - a failed renewal is retried at the next beat
                if self.log is not None:
                    self.log.warning("lease.renew_failed", lease=self.name, error=type(e).__name__)
                continue
            self.beats += 1
            if not held:
                self.lost = True
                if self.log is not None:
                    self.log.warning("lease.lost", lease=self.name)
                return

    async def __aenter__(self) -> "Heartbeat":
        self._task = asyncio.create_task(self._run(), name=f"heartbeat-{self.name}")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None


def holder_gone(owner: str, me: str) -> bool:
    """Whether a lease's holder is known dead before its lease runs out: a process on this host
    that no longer runs (or an earlier process that had our pid). A holder on another host, or
    one we cannot tell about, counts as alive: its lease decides."""
    if owner == me or not owner:
        return not owner
    host, pid = holder_parts(owner)
    if host != socket.gethostname() or pid is None:
        return False
    if pid == os.getpid():
        return True  # an earlier process with our pid (we have another identity)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False
    return False
