"""What the platform clients need to share access tokens across processes: the subset of
store.kv.KeyValueStore they use, as a protocol (tests pass in-memory fakes)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Awaitable, Callable, Protocol


class TokenEntry(Protocol):
    value: str
    expires_at: datetime | None


class TokenStore(Protocol):
    async def get(self, key: str) -> TokenEntry | None: ...
    async def set(self, key: str, value: str, expires_at: datetime | None) -> None: ...
    async def delete(self, key: str, *, only_if_value: str | None = None) -> bool: ...
    async def try_lease(self, key: str, owner: str, ttl: timedelta) -> bool: ...
    async def release_lease(self, key: str, owner: str) -> None: ...


# While another process holds the fetch lease, poll the store this often for its token, then fetch anyway.
LEASE_TTL = timedelta(seconds=15)
LEASE_POLLS = 40
LEASE_POLL_SECONDS = 0.05


async def shared_token(store: TokenStore, key: str, lease_key: str, owner: str,
                       fetch: Callable[[], Awaitable[tuple[str, datetime]]], *, force: bool,
                       now: Callable[[], datetime], sleep: Callable[[float], Awaitable[object]]) -> tuple[str, datetime]:
    """One platform token for every process on the store: the stored one while usable; else one
    process fetches under a lease while the others wait for what it stores (platforms count
    token fetches, and a new token may end the old one early). `force` (the platform refused the
    stored token) fetches anew. Returns (token, usable until)."""
    def usable(stored: datetime | None) -> datetime:
        return stored or (now() + timedelta(seconds=60))

    if not force:
        entry = await store.get(key)
        if entry is not None:
            return entry.value, usable(entry.expires_at)
    leased = await store.try_lease(lease_key, owner, LEASE_TTL)
    if not leased:
        # Another process is fetching: take its token rather than asking the platform again.
        for _ in range(LEASE_POLLS):
            await sleep(LEASE_POLL_SECONDS)
            entry = await store.get(key)
            if entry is not None:
                return entry.value, usable(entry.expires_at)
    try:
        if not force:
            entry = await store.get(key)  # it may have landed meanwhile
            if entry is not None:
                return entry.value, usable(entry.expires_at)
        token, usable_until = await fetch()
        await store.set(key, token, usable_until)
        return token, usable_until
    finally:
        if leased:
            await store.release_lease(lease_key, owner)
