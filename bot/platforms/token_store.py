"""What the platform clients need to share access tokens across processes: the subset of
store.kv.KeyValueStore they use, as a protocol (tests pass in-memory fakes)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol


class TokenEntry(Protocol):
    value: str
    expires_at: datetime | None


class TokenStore(Protocol):
    async def get(self, key: str) -> TokenEntry | None: ...
    async def set(self, key: str, value: str, expires_at: datetime | None) -> None: ...
    async def delete(self, key: str, *, only_if_value: str | None = None) -> bool: ...
    async def try_lease(self, key: str, owner: str, ttl: timedelta) -> bool: ...
    async def release_lease(self, key: str, owner: str) -> None: ...
