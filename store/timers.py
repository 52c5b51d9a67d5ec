"""Durable timers: every SLA deadline is a row (`timers`), swept by the scheduler.

- schedule() is idempotent on the timer's key: scheduling the same ladder step twice (a retried
  handler, two processes) leaves one row.
- take_due() claims due rows and marks them `firing` in the claiming transaction (PostgreSQL:
  FOR UPDATE SKIP LOCKED, so several processes share the table and each row goes to one of them).
- The sweeper runs the action with the timer's key, from which the action derives its outbox
  idempotency key, then marks the row `fired` (finish). A process that dies between claim and
  finish leaves a `firing` row; requeue_stale() hands it back once its lease ran out unrenewed
  (the sweeper renews the leases of the rows it is firing: store.leases.Heartbeat), and the
  shared key makes the retried notification a no-op in the outbox. finish/drop/retry_later are
  fenced on the lease's holder: a sweeper whose row was taken back finishes nothing. So nothing is
  lost and nothing is sent twice, whatever crashes or stalls where, on whichever host.
- An action that raises is retried with backoff and parked as `failed` (visible) after a few tries.

States: pending -> firing -> fired | pending (retry) | failed; pending -> cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import insert_for
from store.leases import holder_gone, process_identity
from store.models import Lead, Timer
from leadbot.clock import Clock, SystemClock

PENDING, FIRING, FIRED, CANCELLED, FAILED = "pending", "firing", "fired", "cancelled", "failed"
ATTEMPTS = "_attempts"  # payload entry counting failed firings


@dataclass(frozen=True, slots=True)
class TimerRow:
    id: int
    key: str
    kind: str
    lead_id: int | None
    payload: Mapping[str, Any]
    due_at: datetime
    state: str
    fired_at: datetime | None

    @property
    def attempts(self) -> int:
        return int(self.payload.get(ATTEMPTS, 0))


@dataclass(frozen=True, slots=True)
class TimerSpec:
    key: str
    kind: str
    lead_id: int | None
    due_at: datetime
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class LeadClock:
    """The times of a lead the scheduler needs to decide whether a timer still applies."""

    id: int
    status: str
    stage: str
    owner_id: int | None
    team_id: int | None
    created_at: datetime
    assigned_at: datetime | None
    claimed_at: datetime | None
    first_contact_at: datetime | None
    stage_entered_at: datetime | None
    last_activity_at: datetime | None


class TimerStore:
    MAX_ATTEMPTS = 5

    LEASE = timedelta(minutes=5)

    def __init__(self, engine: AsyncEngine, clock: Clock | None = None, *, owner: str | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self.owner = (owner or process_identity())[:128]
        self._pg = engine.dialect.name == "postgresql"
        self._insert = insert_for(engine.dialect.name)
        self._schedule_stmt = (self._insert(Timer).on_conflict_do_nothing(index_elements=["key"])
                               .returning(Timer.id))

    # ---- writing -----------------------------------------------------------------------------

    async def schedule(self, key: str, kind: str, lead_id: int | None, due_at: datetime,
                       payload: Mapping[str, Any] | None = None) -> bool:
        """Adds the timer unless one with the same key exists (in any state); True when added."""
        return await self.schedule_many([TimerSpec(key, kind, lead_id, due_at, payload or {})]) == 1

    async def schedule_many(self, specs: Iterable[TimerSpec]) -> int:
        specs = list(specs)
        if not specs:
            return 0
        now = self.clock.now()
        for s in specs:
            if s.due_at.tzinfo is None:
                raise ValueError(f"timer {s.key}: naive due_at")
            if len(s.key) > 300:
                raise ValueError(f"timer key longer than 300 characters: {s.key[:60]}...")
        rows = [dict(key=s.key, kind=s.kind[:64], lead_id=s.lead_id, payload=dict(s.payload), due_at=s.due_at,
                     state=PENDING, created_at=now) for s in specs]
        # One cached statement for the whole ladder, sent as one multi-row INSERT (insertmanyvalues):
        # a fresh .values() statement per timer cost a cache-key build and a round trip each.
        async with self.engine.begin() as conn:
            return len((await conn.execute(self._schedule_stmt, rows)).all())

    async def cancel(self, lead_id: int, kinds: Iterable[str] | None = None) -> int:
        """Cancels the lead's pending timers (of the given kinds, or all); returns how many."""
        cond = [Timer.lead_id == lead_id, Timer.state == PENDING]
        if kinds is not None:
            cond.append(Timer.kind.in_(list(kinds)))
        async with self.engine.begin() as conn:
            return (await conn.execute(update(Timer).where(*cond).values(state=CANCELLED))).rowcount

    async def settle(self, keys: Iterable[str]) -> int:
        """Marks timers fired whose work ran outside the sweep (a tap's after-effects, run by the
        tap itself or its retry); a sweep holding one at that moment finds nothing to finish."""
        keys = list(keys)
        if not keys:
            return 0
        async with self.engine.begin() as conn:
            return (await conn.execute(update(Timer).where(Timer.key.in_(keys), Timer.state.in_((PENDING, FIRING)))
                                       .values(state=FIRED, fired_at=self.clock.now()))).rowcount

    async def reschedule(self, key: str, due_at: datetime) -> bool:
        """Moves a pending timer (snooze); False when it already fired or was cancelled."""
        async with self.engine.begin() as conn:
            return (await conn.execute(update(Timer).where(Timer.key == key, Timer.state == PENDING)
                                       .values(due_at=due_at))).rowcount == 1

    # ---- sweeping ----------------------------------------------------------------------------

    def _held(self) -> tuple[Any, ...]:
        return (Timer.state == FIRING, Timer.lease_owner == self.owner)

    async def take_due(self, now: datetime, limit: int = 500, *, lease: timedelta | None = None) -> list[TimerRow]:
        """Claims up to `limit` due pending timers, oldest first, marking them firing under this
        store's lease in the same transaction. Concurrent callers never get the same row."""
        ids = (select(Timer.id)
               .where(Timer.state == PENDING, Timer.due_at <= now)
               .order_by(Timer.due_at, Timer.id)
               .limit(limit))
        if self._pg:
            ids = ids.with_for_update(skip_locked=True)
        # No state test out here: the subquery already filters (and on PostgreSQL locks, re-checking
        # the row), and a second `state = ...` makes SQLite walk the state index of every open row.
        stmt = (update(Timer)
                .where(Timer.id.in_(ids.scalar_subquery()))
                .values(state=FIRING, fired_at=now, lease_owner=self.owner, lease_until=now + (lease or self.LEASE))
                .returning(Timer)
                .execution_options(synchronize_session=False))
        async with self.engine.begin() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        out = [_mapping_row(r) for r in rows]
        out.sort(key=lambda t: (t.due_at, t.id))
        return out

    async def renew(self, ids: Sequence[int], lease: timedelta | None = None) -> set[int]:
        """Extends this store's lease on timers it is firing; returns the ids it still holds."""
        if not ids:
            return set()
        until = self.clock.now() + (lease or self.LEASE)
        async with self.engine.begin() as conn:
            rows = await conn.execute(update(Timer).where(Timer.id.in_(list(ids)), *self._held())
                                      .values(lease_until=until).returning(Timer.id))
            return {r[0] for r in rows}

    async def finish(self, ids: Sequence[int]) -> int:
        """Marks claimed timers fired once their actions ran; returns how many were still ours."""
        if not ids:
            return 0
        async with self.engine.begin() as conn:
            return (await conn.execute(update(Timer).where(Timer.id.in_(list(ids)), *self._held())
                                       .values(state=FIRED, lease_owner="", lease_until=None))).rowcount

    async def drop(self, ids: Sequence[int]) -> None:
        """Claimed timers that no longer apply (the lead moved on): cancelled, no action."""
        if not ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(update(Timer).where(Timer.id.in_(list(ids)), *self._held())
                               .values(state=CANCELLED, lease_owner="", lease_until=None))

    async def retry_later(self, timer: TimerRow, now: datetime, error: str) -> str:
        """After a failed action: pending again with backoff, or failed after MAX_ATTEMPTS."""
        attempts = timer.attempts + 1
        payload = {**timer.payload, ATTEMPTS: attempts, "_error": error[:500]}
        if attempts >= self.MAX_ATTEMPTS:
            values: dict[str, Any] = {"state": FAILED, "payload": payload}
        else:
            values = {"state": PENDING, "payload": payload, "fired_at": None,
                      "due_at": now + timedelta(seconds=min(300, 5 * 2 ** attempts))}
        async with self.engine.begin() as conn:
            await conn.execute(update(Timer).where(Timer.id == timer.id, *self._held())
                               .values(**values, lease_owner="", lease_until=None))
        return values["state"]

    async def requeue_stale(self, now: datetime, lease: timedelta | None = None) -> int:
        """Firing rows whose holder stopped renewing (dead, hung, cut off: on any host) go back to
        pending once their lease ran out; rows claimed before leases had holders, by age."""
        expired = or_(Timer.lease_until < now,
                      and_(Timer.lease_until.is_(None), Timer.fired_at < now - (lease or self.LEASE)))
        back = dict(state=PENDING, fired_at=None, lease_owner="", lease_until=None)
        async with self.engine.begin() as conn:
            requeued = (await conn.execute(update(Timer).where(Timer.state == FIRING, expired).values(**back))).rowcount
            # A holder on this host that died (kill -9) is known gone before its lease runs out.
            owners = (await conn.execute(select(Timer.lease_owner).where(Timer.state == FIRING).distinct())).scalars()
            for owner in [o for o in owners if o and holder_gone(o, self.owner)]:
                requeued += (await conn.execute(update(Timer).where(Timer.state == FIRING, Timer.lease_owner == owner)
                                                .values(**back))).rowcount
            return requeued

    # ---- reading -----------------------------------------------------------------------------

    async def get(self, key: str) -> TimerRow | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(select(Timer).where(Timer.key == key))).mappings().first()
        return _mapping_row(r) if r else None

    async def for_lead(self, lead_id: int, states: Iterable[str] | None = None) -> list[TimerRow]:
        query = select(Timer).where(Timer.lead_id == lead_id).order_by(Timer.due_at, Timer.id)
        if states is not None:
            query = query.where(Timer.state.in_(list(states)))
        async with self.engine.connect() as conn:
            return [_mapping_row(r) for r in (await conn.execute(query)).mappings()]

    async def next_due(self) -> datetime | None:
        async with self.engine.connect() as conn:
            value = (await conn.execute(select(func.min(Timer.due_at)).where(Timer.state == PENDING))).scalar()
        return _utc(value) if value is not None else None

    async def counts(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(Timer.state, func.count()).group_by(Timer.state))).all()
        return {state: n for state, n in rows}

    async def lead_clocks(self, lead_ids: Iterable[int]) -> dict[int, LeadClock]:
        """The SLA-relevant times of several leads in one query (guards before firing)."""
        ids = sorted(set(lead_ids))
        if not ids:
            return {}
        cols = (Lead.id, Lead.status, Lead.stage, Lead.owner_id, Lead.team_id, Lead.created_at,
                Lead.assigned_at, Lead.claimed_at, Lead.first_contact_at, Lead.stage_entered_at,
                Lead.last_activity_at)
        out: dict[int, LeadClock] = {}
        async with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                for r in (await conn.execute(select(*cols).where(Lead.id.in_(chunk)))).all():
                    out[r[0]] = LeadClock(r[0], r[1], r[2], r[3], r[4], *(_utc(v) for v in r[5:]))
        return out


def _mapping_row(r: Mapping[str, Any]) -> TimerRow:
    return TimerRow(r["id"], r["key"], r["kind"], r["lead_id"], dict(r["payload"] or {}),
                    _utc(r["due_at"]), r["state"], _utc(r["fired_at"]))


def _utc(value: datetime | None) -> Any:
    from leadbot.clock import utc

    return utc(value) if value is not None else None


__all__ = ["TimerStore", "TimerRow", "TimerSpec", "LeadClock", "PENDING", "FIRING", "FIRED", "CANCELLED",
           "FAILED"]
