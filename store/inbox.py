"""The durable inbox: every verified callback is a row under a UNIQUE dedupe key before it is
acknowledged, so a platform retry is a no-op and a crash after the ack loses nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import insert_for, session_factory
from store.kv import KeyValueStore
from store.leases import holder_gone, process_identity
from store.models import InboxItem
from store.spill import SpillJournal, spill_dir_for
from store.sqlite_driver import on_driver_thread
from leadbot.clock import Clock, SystemClock

# `put` answered before the row was committed: the event is in the spill journal (durable; the
# row follows when the journal is replayed). Never a row id (those start at 1).
DEFERRED = -1


@dataclass(frozen=True, slots=True)
class InboxEntry:
    id: int
    platform: str
    dedupe_key: str
    kind: str
    payload: Mapping[str, Any]
    attempts: int
    received_at: datetime


# Claiming and finishing rows, built once (a statement keeps its cache key: no rebuild per row).
_CLAIMED = (InboxItem.id, InboxItem.platform, InboxItem.dedupe_key, InboxItem.kind, InboxItem.payload,
            InboxItem.attempts, InboxItem.received_at)
_LEASED = dict(state="processing", attempts=InboxItem.attempts + 1, lease_owner=bindparam("owner"),
               lease_until=bindparam("until"))
_CLAIM_ONE = (update(InboxItem).where(InboxItem.id == bindparam("entry_id"), InboxItem.state == "pending")
              .values(**_LEASED).returning(*_CLAIMED))
# Finishing is fenced on the lease: a holder whose lease ran out unrenewed and was taken back
# finishes nothing (the new holder does).
_HELD = (InboxItem.state == "processing", InboxItem.lease_owner == bindparam("owner"))
_DONE = (update(InboxItem).where(InboxItem.id == bindparam("entry_id"), *_HELD)
         .values(state="done", processed_at=bindparam("now"), error="", lease_owner="", lease_until=None))
_RENEW = (update(InboxItem).where(InboxItem.id.in_(bindparam("ids", expanding=True)), *_HELD)
          .values(lease_until=bindparam("until")).returning(InboxItem.id))


def _claim_statement(skip_locked: bool) -> Any:
    oldest = (select(InboxItem.id).where(InboxItem.state == "pending").order_by(InboxItem.id)
              .limit(bindparam("limit")))
    if not skip_locked:
        return (update(InboxItem).where(InboxItem.id.in_(oldest.scalar_subquery()), InboxItem.state == "pending")
                .values(**_LEASED).returning(*_CLAIMED))
    # PostgreSQL: the locked picks in a CTE, which runs once. As `id IN (subquery)` the planner may
    # rescan the subquery, and its LIMIT then stops limiting (seen: LIMIT 3 claimed 5 rows).
    picked = oldest.with_for_update(skip_locked=True).cte("picked")
    return (update(InboxItem).where(InboxItem.id == picked.c.id, InboxItem.state == "pending")
            .values(**_LEASED).returning(*_CLAIMED))


def _storable(text: str) -> str:
    """Keys come from platform input: lone surrogates and NUL (refused by PostgreSQL text) would make
    the insert fail on every retry, so they are made visible and harmless instead."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def _store_down(e: Exception) -> bool:
    return (isinstance(e, (OperationalError, InterfaceError, ConnectionError, OSError))
            or (isinstance(e, DBAPIError) and e.connection_invalidated))


class _SqliteInsert:
    """The inbox insert on SQLite (aiosqlite) as ONE call on the driver's thread: INSERT … ON
    CONFLICT DO NOTHING RETURNING for each row, then COMMIT, or ROLLBACK on any error.

    Why: through SQLAlchemy's async adapter one put is ~6 round trips to aiosqlite's thread
    (cursor, execute, fetchall, close, commit, reset), and every trip must win the GIL back from
    the busy event loop; a put cost ~0.9 ms against ~0.08 ms for the same work in one trip, and that
    hand-off (not the commit) was what capped ingest. Same guarantees: the caller's answer comes
    after COMMIT returned, the UNIQUE key still dedupes, and driver errors are raised as
    SQLAlchemy's own exception classes, so `_store_down` and the 503 mapping are unchanged.
    Values go through the columns' own bind processors (JSON, UTCDateTime), so rows are stored
    exactly as the SQLAlchemy path stores them.

    Only used when nothing observes statements or transactions: with echo or a cursor-execute or
    begin/commit/rollback listener (tracing, tests injecting faults or counting commits) the
    inserts take the instrumented SQLAlchemy path.

    `insert_here` goes one step further and runs the same statements on the event loop's own
    thread, through a connection of its own to the same file. Why: even one trip to aiosqlite's
    thread (queue, thread wake-up, GIL hand-back, call_soon_threadsafe, self-pipe) cost more than
    the work: the ingest bench showed the loop idle ~14 % of the time waiting for it and ~100 us of
    extra CPU per callback, while an INSERT + COMMIT in WAL mode with synchronous=NORMAL writes to
    the page cache only (no fsync) and takes ~25 us for one row, ~12 us a row in a batch of four.
    It never waits on the loop: busy_timeout is 0, so a write lock held by another connection
    (the processor's, another process's) fails at once, and the batch takes the awaited path
    above, which waits for the lock on aiosqlite's thread; it never checkpoints (the engine's own
    connection does, off the loop: wal_autocheckpoint=0 here); and any other error also hands the
    batch to the awaited path, which owns error handling (per-row retries, 503 on an outage). Only
    for a database file already in WAL mode: in-memory databases are private to one connection,
    and a rollback journal would make readers wait on this writer."""

    COLUMNS = ("platform", "dedupe_key", "kind", "payload", "state", "attempts", "error", "received_at")

    def __init__(self, engine: AsyncEngine) -> None:
        dialect = engine.dialect
        table = InboxItem.__table__
        database = engine.url.database
        # Only a plain file path: ':memory:' or a URI (mode=memory, shared caches) is not a file
        # another connection can open as the same database.
        self.path = (database if database and database != ":memory:" and not engine.url.query
                     and not database.startswith("file:") else None)
        self._here: sqlite3.Connection | None = None
        self.sql = (f"INSERT INTO {table.name} ({', '.join(self.COLUMNS)}) "
                    f"VALUES ({', '.join('?' for _ in self.COLUMNS)}) "
                    f"ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key")
        self.processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                           for name in self.COLUMNS]

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> "_SqliteInsert | None":
        if engine.dialect.name != "sqlite" or engine.dialect.driver != "aiosqlite":
            return None
        import aiosqlite

        if not (hasattr(aiosqlite.Connection, "_execute") and hasattr(aiosqlite.Connection, "_conn")):
            return None  # aiosqlite's internals moved: the SQLAlchemy path still works, only slower
        return cls(engine)

    @staticmethod
    def usable(engine: AsyncEngine) -> bool:
        sync = engine.sync_engine
        d = sync.dispatch
        return not (sync.echo or d.before_cursor_execute or d.after_cursor_execute or d.begin or d.commit
                    or d.rollback)

    def _params(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(p(row[c]) if p is not None else row[c] for c, p in zip(self.COLUMNS, self.processors))

    def _run(self, conn: sqlite3.Connection, params: list[tuple[Any, ...]]) -> list[tuple[int, str]]:
        # Runs on aiosqlite's thread, which owns this connection while we hold the pool checkout.
        try:
            out: list[tuple[int, str]] = []
            for p in params:
                out.extend(conn.execute(self.sql, p).fetchall())
            conn.commit()
            return out
        except BaseException:
            conn.rollback()
            raise

    def _here_connection(self) -> sqlite3.Connection | None:
        if self._here is None and self.path is not None:
            conn = None
            try:
                conn = sqlite3.connect(self.path, timeout=0)
                wal = conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
                for pragma in ("busy_timeout=0", "synchronous=NORMAL", "wal_autocheckpoint=0"):
                    conn.execute(f"PRAGMA {pragma}")
            except sqlite3.Error:
                if conn is not None:
                    conn.close()
                return None  # e.g. the file is locked while the schema is created: next time
            if not wal:
                conn.close()
                self.path = None
                return None
            self._here = conn
        return self._here

    def write_locked(self) -> bool:
        """Whether some connection holds the database's write lock right now: BEGIN IMMEDIATE
        on the loop-thread connection (busy timeout 0) fails at once if so, else it is rolled
        back at once."""
        conn = self._here_connection()
        if conn is None:
            return True  # cannot tell (the file could not even be opened): assume the worst
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            return "locked" in str(e) or "busy" in str(e)
        conn.execute("ROLLBACK")
        return False

    def insert_here(self, rows: list[dict[str, Any]]) -> dict[str, int] | None:
        """Inserts and commits on the calling (event loop) thread; None when it could not at once
        (lock held, any error): the caller then takes `insert`, which decides what the error is."""
        conn = self._here_connection()
        if conn is None:
            return None
        try:
            params = [self._params(r) for r in rows]
            return {key: row_id for row_id, key in self._run(conn, params)}
        except Exception:
            return None

    def close(self) -> None:
        if self._here is not None:
            self._here.close()
            self._here = None

    async def insert(self, engine: AsyncEngine, rows: list[dict[str, Any]]) -> dict[str, int]:
        params = [self._params(r) for r in rows]  # may raise for a bad row: before any I/O
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            aio = raw.driver_connection  # aiosqlite.Connection
            try:
                # The one trip to the driver's thread. The connection may have no busy timeout
                # of its own (statements on the loop thread): a lock held elsewhere is waited
                # out there, on the thread.
                result = await on_driver_thread(aio, self._run, params)
            except sqlite3.Error as e:
                raise DBAPIError.instance(self.sql, params, e, sqlite3.Error, dialect=engine.dialect) from e
        return {key: row_id for row_id, key in result}


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
    # How long a callback's answer may wait for its row's commit before the event goes to the
    # spill journal instead, if a write lock is what it waits for (SQLite files only; see
    # store/spill.py). Inside DingTalk's 1.5 s and WeCom's 5 s with room for the rest of
    # the answer; a card tap's inline handling counts from its arrival.
    ACK_WRITE_SECONDS = 0.75
    # A handler takes milliseconds; its platform calls go through the outbox. The holder renews
    # the lease every third of it while it works (store.leases.Heartbeat), so two minutes
    # only bound how long a dead or hung holder's rows wait before another process takes them.
    LEASE = timedelta(minutes=2)

    def __init__(self, engine: AsyncEngine, clock: Clock | None = None, *, group_commit: bool = True,
                 linger: float = 0.0, owner: str | None = None) -> None:
        self.engine = engine
        # host:pid:random (store.leases): unique across hosts and restarts; host and pid let a
        # process on the same host tell a dead holder's rows from a live one's at once.
        self.owner = owner or process_identity()
        self.clock = clock or SystemClock()
        self.sessions = session_factory(engine)
        self._insert = insert_for(engine.dialect.name)
        # Built once: a fresh `.values(**row)` statement per put cost ~0.3 ms of cache-key and
        # coercion work in the profile, more than the SQLite commit itself.
        self._batch_stmt = (self._insert(InboxItem)
                            .on_conflict_do_nothing(index_elements=["dedupe_key"])
                            .returning(InboxItem.id, InboxItem.dedupe_key))
        self._claim_stmt = _claim_statement(engine.dialect.name == "postgresql")
        self._sqlite = _SqliteInsert.for_engine(engine)
        # Only for a SQLite file: PostgreSQL has no database-wide write lock (a saturated pool
        # answers 503, which the callers map to a retry), and an in-memory database has no disk.
        self.spill = (SpillJournal(spill_dir_for(self._sqlite.path), self.owner)
                      if self._sqlite is not None and self._sqlite.path is not None else None)
        self._abandoned: set[asyncio.Future[Any]] = set()
        self.group_commit = group_commit
        self.linger = linger
        self._open: _Batch | None = None
        self._here: _Batch | None = None
        self._commit_lock: asyncio.Lock | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    def _values(self, platform: str, dedupe_key: str, kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        return dict(platform=platform, dedupe_key=_storable(dedupe_key)[:400], kind=_storable(kind)[:64],
                    payload=dict(payload),
                    state="pending", attempts=0, error="", received_at=self.clock.now())

    async def put(self, platform: str, dedupe_key: str, kind: str, payload: Mapping[str, Any], *,
                  within: float | None = None) -> int | None:
        """Stores the event; returns its id, or None when the same key was already stored.

        `within` (a callback about to be answered): when the commit has not happened after that
        many seconds (another connection holds SQLite's write lock), the event is written to the
        spill journal instead and DEFERRED is returned; the commit carries on in the background
        (whichever lands second is a duplicate no-op). Without a journal it waits as long as it
        takes."""
        values = self._values(platform, dedupe_key, kind, payload)
        if not self.group_commit:
            write: asyncio.Future[int | None] = asyncio.ensure_future(self._put_one(values))
        else:
            write = asyncio.get_running_loop().create_future()
            if self._sqlite is not None and self._sqlite.path is not None and self._sqlite.usable(self.engine):
                self._join_here(values, write)
            else:
                self._join_batch(values, write)
        if within is None or self.spill is None:
            # A cancelled caller cancels only its own future; both flushes skip futures already
            # done, and its row is still written (never acknowledged, so its retry is a no-op).
            return await write
        while True:
            try:
                return await asyncio.wait_for(asyncio.shield(write), within)
            except asyncio.TimeoutError:
                if await self.write_locked():
                    self._abandon(write)
                    return self.defer(values)
                # Slow (a busy machine), not blocked: the row is on its way; spilling it would
                # only make a second copy. Look again after another budget.

    @property
    def can_defer(self) -> bool:
        return self.spill is not None

    # Our own commits hold the write lock for milliseconds; the holds worth spilling for (an
    # import, a backup, a long transaction) last. Seen twice this far apart, a lock is the latter.
    LOCK_RECHECK_SECONDS = 0.05

    async def write_locked(self) -> bool:
        """Whether another connection keeps SQLite's write lock (False when there is no journal
        to defer to)."""
        sqlite = self._sqlite
        if self.spill is None or sqlite is None or not sqlite.write_locked():
            return False
        await asyncio.sleep(self.LOCK_RECHECK_SECONDS)
        return sqlite.write_locked()

    def defer(self, values: dict[str, Any], once: Mapping[str, Any] | None = None) -> int:
        """Writes the row's values to the spill journal (fsync'ed) and returns DEFERRED. `once`
        ({"key", "owner", "ttl_seconds"}) is a lease the replay must win before the row is
        stored (a check the caller could not make in time, e.g. a robot message's sign)."""
        assert self.spill is not None
        self.spill.append({**values, "once": dict(once)} if once else values)
        return DEFERRED

    def values_for(self, platform: str, dedupe_key: str, kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        return self._values(platform, dedupe_key, kind, payload)

    def _abandon(self, write: "asyncio.Future[Any]") -> None:
        # Nobody awaits it any more; keep it referenced until done and consume its outcome.
        self._abandoned.add(write)

        def finished(f: "asyncio.Future[Any]") -> None:
            self._abandoned.discard(f)
            if not f.cancelled():
                f.exception()

        write.add_done_callback(finished)

    async def replay_spill(self) -> tuple[int, int]:
        """Moves spilled events into the inbox table: (rows stored, rows refused by their
        `once` guard). A file is deleted only after its rows are committed; on an error it stays
        and the next replay takes it again."""
        if self.spill is None or not self.spill.pending():
            return 0, 0
        stored = refused = 0
        for path in self.spill.take():
            rows = []
            for row in self.spill.read(path):
                once = row.pop("once", None)
                if once and not await KeyValueStore(self.engine, self.clock).try_lease(
                        str(once["key"]), str(once["owner"]), timedelta(seconds=float(once["ttl_seconds"]))):
                    refused += 1
                    continue
                rows.append(row)
            if rows:
                stored += len(await self._insert_rows(self._rows([(r, None) for r in rows])))  # type: ignore[misc]
            self.spill.done(path)
        return stored, refused

    def _join_here(self, values: dict[str, Any], future: "asyncio.Future[int | None]") -> None:
        """SQLite: puts made before the loop comes round to the flush share one INSERT + COMMIT
        on the loop's thread (see _SqliteInsert.insert_here)."""
        batch = self._here
        if batch is None:
            batch = self._here = _Batch()
            asyncio.get_running_loop().call_soon(self._flush_here, batch)
        batch.items.append((values, future))
        if len(batch.items) >= self.MAX_BATCH:
            self._here = None

    def _flush_here(self, batch: _Batch) -> None:
        if self._here is batch:
            self._here = None
        assert self._sqlite is not None
        ids = self._sqlite.insert_here(self._rows(batch.items))
        if ids is None:
            for values, future in batch.items:
                self._join_batch(values, future)
            return
        self._answer(batch.items, ids)

    def _join_batch(self, values: dict[str, Any], future: "asyncio.Future[int | None]") -> None:
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

    def close(self) -> None:
        """Closes the loop-thread SQLite connection, if one was opened (the engine is the caller's)."""
        if self._sqlite is not None:
            self._sqlite.close()

    async def _put_one(self, values: dict[str, Any]) -> int | None:
        return (await self._insert_rows([values])).get(values["dedupe_key"])

    async def _insert_rows(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        """Inserts `rows` in one transaction and commits; returns {dedupe_key: id} for the rows
        that were new (a key already stored is absent). Durable when it returns."""
        if self._sqlite is not None and self._sqlite.usable(self.engine):
            return await self._sqlite.insert(self.engine, rows)
        async with self.engine.begin() as conn:
            return {key: row_id for row_id, key in (await conn.execute(self._batch_stmt, rows)).all()}

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

    @staticmethod
    def _rows(items: list[tuple[dict[str, Any], "asyncio.Future[int | None]"]]) -> list[dict[str, Any]]:
        first: dict[str, dict[str, Any]] = {}
        for values, _ in items:
            first.setdefault(values["dedupe_key"], values)
        # Sorted keys: two processes inserting overlapping batches lock in the same order (no deadlock).
        return [first[k] for k in sorted(first)]

    @staticmethod
    def _answer(items: list[tuple[dict[str, Any], "asyncio.Future[int | None]"]], ids: dict[str, int]) -> None:
        for values, future in items:
            # Within a batch the first caller of a key gets its id, a repeat of it None, like a retry.
            row_id = ids.pop(values["dedupe_key"], None)
            if not future.done():
                future.set_result(row_id)

    async def _commit(self, items: list[tuple[dict[str, Any], "asyncio.Future[int | None]"]]) -> None:
        rows = self._rows(items)
        # executemany: one cached statement, sent as multi-row VALUES by SQLAlchemy's insertmanyvalues
        # (on SQLite: one call on the driver's thread, see _SqliteInsert).
        try:
            ids = await self._insert_rows(rows)
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
        self._answer(items, ids)

    async def get(self, entry_id: int) -> InboxEntry | None:
        async with self.sessions() as session:
            r = await session.get(InboxItem, entry_id)
            if r is None:
                return None
            return InboxEntry(r.id, r.platform, r.dedupe_key, r.kind, r.payload, r.attempts, r.received_at)

    async def claim(self, entry_id: int) -> InboxEntry | None:
        """Moves a pending row to processing under this process's lease and returns it; only one
        worker (or process) wins it (None for the others). One statement: the UPDATE returns the
        row it claimed."""
        async with self.engine.begin() as conn:
            r = (await conn.execute(_CLAIM_ONE, {"entry_id": entry_id, **self._lease()})).first()
            return InboxEntry(*r) if r is not None else None

    async def claim_pending(self, limit: int = 10) -> list[InboxEntry]:
        """Claims up to `limit` of the oldest pending rows at once (one statement), oldest first.
        On PostgreSQL rows another process is claiming are skipped, never shared. Keep `limit`
        small: the rows wait under this process's lease until their turn comes."""
        async with self.engine.begin() as conn:
            rows = (await conn.execute(self._claim_stmt, {"limit": limit, **self._lease()})).all()
        return sorted((InboxEntry(*r) for r in rows), key=lambda e: e.id)

    async def release(self, entry_ids: Sequence[int]) -> None:
        """Claimed rows this process will not handle after all (shutting down) go back to pending
        without counting as an attempt."""
        if not entry_ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(update(InboxItem).where(InboxItem.id.in_(list(entry_ids)),
                                                       InboxItem.state == "processing",
                                                       InboxItem.lease_owner == self.owner[:128])
                               .values(state="pending", attempts=InboxItem.attempts - 1, lease_owner="",
                                       lease_until=None))

    def _lease(self) -> dict[str, Any]:
        return {"owner": self.owner[:128], "until": self.clock.now() + self.LEASE}

    async def renew(self, entry_ids: Sequence[int]) -> set[int]:
        """Extends this process's lease on rows it is working on; returns those it still holds
        (a row missing was taken back after its lease ran out: do not finish it)."""
        if not entry_ids:
            return set()
        async with self.engine.begin() as conn:
            rows = await conn.execute(_RENEW, {"ids": list(entry_ids), "owner": self.owner[:128],
                                               "until": self.clock.now() + self.LEASE})
            return {r[0] for r in rows}

    async def done(self, entry_id: int) -> bool:
        """False when this process no longer held the row (its lease was taken back)."""
        async with self.engine.begin() as conn:
            done = await conn.execute(_DONE, {"entry_id": entry_id, "now": self.clock.now(),
                                              "owner": self.owner[:128]})
            return done.rowcount == 1

    async def failed(self, entry_id: int, error: str) -> bool:
        """Puts the row back for another try, or parks it as failed after MAX_ATTEMPTS. False
        (nothing written) when this process no longer held the row."""
        async with self.sessions() as session, session.begin():
            row = await session.get(InboxItem, entry_id, with_for_update=True)
            if row is None or row.state != "processing" or row.lease_owner != self.owner[:128]:
                return False
            row.error = error[:2000]
            row.state = "failed" if row.attempts >= self.MAX_ATTEMPTS else "pending"
            row.lease_owner, row.lease_until = "", None
            return True

    def _orphaned(self, owner: str, until: datetime | None, now: datetime) -> bool:
        """Whether a processing row's holder is gone: its lease ran out unrenewed (or it predates
        leases), or it is a process on this host that no longer runs."""
        if until is None or until <= now:
            return True
        return holder_gone(owner, self.owner[:128])

    async def requeue_stale(self) -> int:
        """Rows whose holder crashed go back to pending: at start, and from the processor's
        periodic sweep. A row another live process is handling stays with it (until its lease
        runs out), so starting or restarting one process never re-runs its neighbours' work."""
        now = self.clock.now()
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(InboxItem.id, InboxItem.lease_owner, InboxItem.lease_until)
                                       .where(InboxItem.state == "processing"))).all()
        requeued = 0
        for row_id, owner, until in rows:
            if not self._orphaned(owner, until, now):
                continue
            # Conditional on the lease we judged: a row finished or re-claimed meanwhile stays as is.
            same_lease = InboxItem.lease_until.is_(None) if until is None else InboxItem.lease_until == until
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    update(InboxItem).where(InboxItem.id == row_id, InboxItem.state == "processing",
                                            InboxItem.lease_owner == owner, same_lease)
                    .values(state="pending", lease_owner="", lease_until=None))
                requeued += result.rowcount
        return requeued

    async def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        async with self.sessions() as session:
            rows = (await session.execute(select(InboxItem.state, func.count()).group_by(InboxItem.state))).all()
            return {state: n for state, n in rows}
