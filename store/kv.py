"""Small shared state in the `kv` table: values with an expiry that several processes share
(platform access tokens, so N processes do not each fetch one) and short leases (one process
fetches, the others wait for its result)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import insert_for
from store.models import KeyValue
from leadbot.clock import Clock, SystemClock


@dataclass(frozen=True, slots=True)
class KVEntry:
    key: str
    value: str
    expires_at: datetime | None


class KeyValueStore:
    def __init__(self, engine: AsyncEngine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self._insert = insert_for(engine.dialect.name)

    async def get(self, key: str) -> KVEntry | None:
        """The live value, or None when absent or expired."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(KeyValue.value, KeyValue.expires_at)
                                      .where(KeyValue.key == key))).first()
        if row is None:
            return None
        value, expires_at = row
        if expires_at is not None and expires_at <= self.clock.now():
            return None
        return KVEntry(key, value, expires_at)

    async def set(self, key: str, value: str, expires_at: datetime | None) -> None:
        stmt = self._insert(KeyValue).values(key=key, value=value, expires_at=expires_at)
        stmt = stmt.on_conflict_do_update(index_elements=["key"],
                                          set_={"value": value, "expires_at": expires_at})
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def delete(self, key: str, *, only_if_value: str | None = None) -> bool:
        """Deletes the key; with `only_if_value`, only while it still holds that value, so a
        process discarding a stale token never deletes the fresh one another process stored."""
        cond = KeyValue.key == key
        if only_if_value is not None:
            cond = and_(cond, KeyValue.value == only_if_value)
        async with self.engine.begin() as conn:
            return (await conn.execute(delete(KeyValue).where(cond))).rowcount > 0

    async def try_lease(self, key: str, owner: str, ttl: timedelta) -> bool:
        """Takes the lease `key` for `owner` unless another owner holds an unexpired one."""
        now = self.clock.now()
        until = now + ttl
        async with self.engine.begin() as conn:
            taken = await conn.execute(
                self._insert(KeyValue).values(key=key, value=owner, expires_at=until)
                .on_conflict_do_nothing(index_elements=["key"]).returning(KeyValue.key))
            if taken.first() is not None:
                return True
            result = await conn.execute(
                update(KeyValue)
                .where(KeyValue.key == key,
                       or_(KeyValue.value == owner, KeyValue.expires_at.is_(None),
                           KeyValue.expires_at <= now))
                .values(value=owner, expires_at=until))
            return result.rowcount == 1

    async def release_lease(self, key: str, owner: str) -> None:
        await self.delete(key, only_if_value=owner)

    async def setdefault(self, key: str, value: str) -> str:
        """Stores `value` unless the key exists; returns what is stored. Several processes
        starting at once agree on one value (the first insert wins)."""
        async with self.engine.begin() as conn:
            await conn.execute(self._insert(KeyValue).values(key=key, value=value, expires_at=None)
                               .on_conflict_do_nothing(index_elements=["key"]))
            return (await conn.execute(select(KeyValue.value).where(KeyValue.key == key))).scalar_one()

    async def get_or_create(self, key: str, value: str) -> str:
        """The key's value, storing ``value`` first when the key is absent (the first process
        to get here wins; every later one reads what it stored)."""
        async with self.engine.begin() as conn:
            await conn.execute(self._insert(KeyValue).values(key=key, value=value, expires_at=None)
                               .on_conflict_do_nothing(index_elements=["key"]))
            stored = (await conn.execute(select(KeyValue.value).where(KeyValue.key == key))).scalar_one()
        return str(stored)

    async def live_with_prefix(self, prefix: str) -> dict[str, KVEntry]:
        """Every unexpired key that starts with ``prefix`` (a handful: send blocks)."""
        now = self.clock.now()
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(KeyValue.key, KeyValue.value, KeyValue.expires_at)
                                       .where(KeyValue.key.startswith(prefix, autoescape=True),
                                              or_(KeyValue.expires_at.is_(None), KeyValue.expires_at > now)))).all()
        return {k: KVEntry(k, v, e) for k, v, e in rows}


DEPLOYMENT_KEY = "deployment_id"


async def deployment_id(engine: AsyncEngine, clock: Clock | None = None) -> str:
    """A random id made once per database at first start. conformance W6 (wecom/94888): a
    WeCom task_id must be unique within the app with no documented expiry, so the ids leadbot
    hands the platforms (task_id, outTrackId, msgUuid) carry it: a staging deployment or a
    reset database on the same app never repeats one."""
    import secrets

    return await KeyValueStore(engine, clock).get_or_create(DEPLOYMENT_KEY, secrets.token_hex(4))
