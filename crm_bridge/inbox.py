"""The durable inbox: every verified callback is a row under a UNIQUE dedupe key before it is
acknowledged, so a platform retry is a no-op and a crash after the ack loses nothing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Sequence

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_bridge.db import session_factory
from crm_bridge.models import InboxItem
from leadbot.clock import Clock, SystemClock


@dataclass(frozen=True, slots=True)
class InboxEntry:
    id: int
    platform: str
    dedupe_key: str
    kind: str
    payload: Mapping[str, Any]
    attempts: int
    received_at: datetime


def _storable(text: str) -> str:
    """Keys come from platform input: lone surrogates and NUL (refused by PostgreSQL text) would make
    the insert fail on every retry, so they are made visible and harmless instead."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def _store_down(e: Exception) -> bool:
    return (isinstance(e, (OperationalError, InterfaceError, ConnectionError, OSError))
            or (isinstance(e, DBAPIError) and e.connection_invalidated))


@dataclass
class _Batch:
    """Puts waiting for one shared commit: (row values, the caller's future)."""
    items: list[tuple[dict[str, Any], "asyncio.Future[int | None]"]] = field(default_factory=list)


class Inbox:
    """`put` is group-committed: puts that arrive while a commit is in flight (or within
    `linger` seconds) share the next transaction, one multi-row INSERT, and each caller gets its
    own row's answer only after that commit, so the route still acknowledges only what is
    durable. Under light load a batch is one row and nothing waits."""

    MAX_ATTEMPTS = 5
    MAX_BATCH = 256

    def __init__(self, engine: AsyncEngine, clock: Clock | None = None, *, group_commit: bool = True,
                 linger: float = 0.0) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self.sessions = session_factory(engine)
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        self.group_commit = group_commit
        self.linger = linger
        self._open: _Batch | None = None
        self._commit_lock: asyncio.Lock | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    def _values(self, platform: str, dedupe_key: str, kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        return dict(platform=platform, dedupe_key=_storable(dedupe_key)[:400], kind=_storable(kind)[:64],
                    payload=dict(payload),
                    state="pending", attempts=0, error="", received_at=self.clock.now())

    async def put(self, platform: str, dedupe_key: str, kind: str, payload: Mapping[str, Any]) -> int | None:
        """Stores the event; returns its id, or None when the same key was already stored."""
        values = self._values(platform, dedupe_key, kind, payload)
        if not self.group_commit:
            return await self._put_one(values)
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        batch = self._open
        if batch is None:
            batch = self._open = _Batch()
            # The flush runs in a task of its own: a caller that goes away (client disconnect)
            # must not strand the others waiting on the same commit.
            task = asyncio.create_task(self._flush(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        batch.items.append((values, future))
        if len(batch.items) >= self.MAX_BATCH and self._open is batch:
            self._open = None
        # shield: a cancelled caller still leaves its future to the flush, which checks done().
        return await asyncio.shield(future)

    async def _put_one(self, values: dict[str, Any]) -> int | None:
        stmt = (self._insert(InboxItem).values(**values)
                .on_conflict_do_nothing(index_elements=["dedupe_key"])
                .returning(InboxItem.id))
        async with self.engine.begin() as conn:
            return (await conn.execute(stmt)).scalar_one_or_none()

    async def _flush(self, batch: _Batch) -> None:
        if self._commit_lock is None:
            self._commit_lock = asyncio.Lock()
        try:
            # Waiting for the commit in flight is what fills the batch; linger adds a fixed wait.
            async with self._commit_lock:
                await asyncio.sleep(self.linger)
                if self._open is batch:
                    self._open = None
                await self._commit(batch.items)
        except Exception as e:
            for _, future in batch.items:
                if not future.done():
                    future.set_exception(e)
        except BaseException:
            # Shut down mid-commit: nobody was acknowledged, so the platforms will retry.
            for _, future in batch.items:
                future.cancel()
            raise

    async def _commit(self, items: list[tuple[dict[str, Any], "asyncio.Future[int | None]"]]) -> None:
        first: dict[str, dict[str, Any]] = {}
        for values, _ in items:
            first.setdefault(values["dedupe_key"], values)
        # Sorted keys: two processes inserting overlapping batches lock in the same order (no deadlock).
        rows = [first[k] for k in sorted(first)]
        # executemany: one cached statement, sent as multi-row VALUES by SQLAlchemy's insertmanyvalues.
        stmt = (self._insert(InboxItem)
                .on_conflict_do_nothing(index_elements=["dedupe_key"])
                .returning(InboxItem.id, InboxItem.dedupe_key))
        try:
            async with self.engine.begin() as conn:
                ids = {key: row_id for row_id, key in (await conn.execute(stmt, rows)).all()}
        except Exception as e:
            if len(rows) == 1 or _store_down(e):
                raise  # the store is down: every caller answers 503 and the platform retries
            # One bad row must not refuse its neighbours: each caller gets its own answer.
            for values, future in items:
                try:
                    result = await self._put_one(values)
                except Exception as e:
                    if not future.done():
                        future.set_exception(e)
                else:
                    if not future.done():
                        future.set_result(result)
            return
        for values, future in items:
            # Within a batch the first caller of a key gets its id, a repeat of it None, like a retry.
            row_id = ids.pop(values["dedupe_key"], None)
            if not future.done():
                future.set_result(row_id)

    async def pending(self, limit: int = 100) -> Sequence[InboxEntry]:
        query = (select(InboxItem).where(InboxItem.state == "pending").order_by(InboxItem.id).limit(limit))
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        async with self.sessions() as session:
            rows = (await session.execute(query)).scalars().all()
            return [InboxEntry(r.id, r.platform, r.dedupe_key, r.kind, r.payload, r.attempts, r.received_at)
                    for r in rows]

    async def get(self, entry_id: int) -> InboxEntry | None:
        async with self.sessions() as session:
            r = await session.get(InboxItem, entry_id)
            if r is None:
                return None
            return InboxEntry(r.id, r.platform, r.dedupe_key, r.kind, r.payload, r.attempts, r.received_at)

    async def claim(self, entry_id: int) -> bool:
        """Moves a pending row to processing; only one worker (or process) wins it."""
        async with self.engine.begin() as conn:
            result = await conn.execute(update(InboxItem)
                                        .where(InboxItem.id == entry_id, InboxItem.state == "pending")
                                        .values(state="processing", attempts=InboxItem.attempts + 1))
            return result.rowcount == 1

    async def done(self, entry_id: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(InboxItem).where(InboxItem.id == entry_id)
                               .values(state="done", processed_at=self.clock.now(), error=""))

    async def failed(self, entry_id: int, error: str) -> None:
        """Puts the row back for another try, or parks it as failed after MAX_ATTEMPTS."""
        async with self.sessions() as session, session.begin():
            row = await session.get(InboxItem, entry_id)
            if row is None:
                return
            row.error = error[:2000]
            row.state = "failed" if row.attempts >= self.MAX_ATTEMPTS else "pending"

    async def requeue_stale(self) -> int:
        """At start: rows a crashed process left half-done go back to pending."""
        async with self.engine.begin() as conn:
            result = await conn.execute(update(InboxItem).where(InboxItem.state == "processing")
                                        .values(state="pending"))
            return result.rowcount

    async def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        async with self.sessions() as session:
            rows = (await session.execute(select(InboxItem.state, func.count()).group_by(InboxItem.state))).all()
            return {state: n for state, n in rows}
