"""The durable inbox: every verified callback is a row under a UNIQUE dedupe key before it is
acknowledged, so a platform retry is a no-op and a crash after the ack loses nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
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


class Inbox:
    MAX_ATTEMPTS = 5

    def __init__(self, engine: AsyncEngine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self.sessions = session_factory(engine)
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert

    async def put(self, platform: str, dedupe_key: str, kind: str, payload: Mapping[str, Any]) -> int | None:
        """Stores the event; returns its id, or None when the same key was already stored."""
        stmt = (self._insert(InboxItem)
                .values(platform=platform, dedupe_key=dedupe_key[:400], kind=kind[:64], payload=dict(payload),
                        state="pending", attempts=0, error="", received_at=self.clock.now())
                .on_conflict_do_nothing(index_elements=["dedupe_key"])
                .returning(InboxItem.id))
        async with self.engine.begin() as conn:
            return (await conn.execute(stmt)).scalar_one_or_none()

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
