"""The one-hop SQLite cursor (store/sqlite_driver.py): on a WAL file statements run on the
event loop's thread and only commits (and waits for another connection's lock) make a trip to
aiosqlite's thread; elsewhere one trip per statement. Otherwise what SQLAlchemy's own adapter
gives: rows, rowcount, lastrowid, executemany, RETURNING, and the driver's error classes (so
outages still answer 503)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from store.db import create_engine


@pytest.fixture
async def lite(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/driver.db")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT UNIQUE, n INT)"))
    yield engine
    await engine.dispose()


async def _hops(engine, work) -> int:
    """How many functions `work` sent to aiosqlite's thread."""
    async with engine.connect() as conn:
        aio = (await conn.get_raw_connection()).driver_connection
        real = aio._execute
        calls = []

        async def counting(fn, *args, **kwargs):
            calls.append(fn)
            return await real(fn, *args, **kwargs)

        aio._execute = counting
        try:
            await work(conn)
        finally:
            del aio._execute
        return len(calls)


async def test_the_engine_uses_the_one_hop_cursor(lite) -> None:
    async with lite.connect() as conn:
        raw = await conn.get_raw_connection()
        assert type(raw.dbapi_connection).__name__ == "OneHopConnection"
    assert lite.dialect.driver == "aiosqlite" and lite.url.drivername == "sqlite+aiosqlite"


async def test_statements_run_on_the_loop_thread_and_commits_on_the_drivers(lite) -> None:
    async def work(conn):
        await conn.execute(text("INSERT INTO t (k, n) VALUES ('a', 1)"))
        rows = (await conn.execute(text("SELECT k, n FROM t"))).all()
        assert rows == [("a", 1)]
        await conn.commit()

    # two statements and a commit: one trip, the commit's (the stock adapter makes four per statement)
    assert await _hops(lite, work) == 1


async def test_without_wal_each_statement_is_one_trip(tmp_path) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from store.sqlite_driver import module

    # The driver alone, without create_engine's WAL set-up: statements stay on the thread.
    memory = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/plain.db", module=module())
    try:
        async def work(conn):
            await conn.execute(text("CREATE TABLE t (k TEXT)"))
            await conn.execute(text("INSERT INTO t VALUES ('a')"))
            assert (await conn.execute(text("SELECT k FROM t"))).all() == [("a",)]

        assert await _hops(memory, work) == 3
    finally:
        await memory.dispose()


def _hold_write_lock(path: str, seconds: float, held: threading.Event) -> None:
    other = sqlite3.connect(path)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t (k, n) VALUES ('other', 0)")
    held.set()
    time.sleep(seconds)
    other.commit()
    other.close()


async def test_a_write_lock_held_elsewhere_is_waited_out_off_the_loop(lite, tmp_path) -> None:
    """Another process (a CLI import, say) holds the write lock: the statement waits for it on
    the driver's thread, as a busy timeout would, while the loop stays free."""
    held = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(f"{tmp_path}/driver.db", 0.5, held))
    holder.start()
    await asyncio.get_running_loop().run_in_executor(None, held.wait)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        async with lite.begin() as conn:
            await conn.execute(text("INSERT INTO t (k, n) VALUES ('mine', 1)"))
    finally:
        beat.cancel()
        holder.join()
    assert time.monotonic() - started >= 0.4  # it did wait for the lock...
    assert ticks >= 10  # ...without stopping the loop
    async with lite.connect() as conn:
        assert (await conn.execute(text("SELECT k FROM t ORDER BY k"))).scalars().all() == ["mine", "other"]


async def test_rows_counts_ids_and_returning(lite) -> None:
    async with lite.begin() as conn:
        first = await conn.execute(text("INSERT INTO t (k, n) VALUES ('a', 1)"))
        assert first.lastrowid == 1
        many = await conn.execute(text("INSERT INTO t (k, n) VALUES (:k, :n)"), [{"k": f"m{i}", "n": i} for i in range(5)])
        assert many.rowcount == 5
        updated = await conn.execute(text("UPDATE t SET n = n + 10 WHERE n < 3"))
        assert updated.rowcount == 4  # a(1), m0, m1, m2
        back = (await conn.execute(text("INSERT INTO t (k, n) VALUES ('r', 7) RETURNING id, k"))).all()
        assert back == [(7, "r")]
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 7
        assert (await conn.execute(text("SELECT k FROM t WHERE n > 100"))).all() == []
    async with lite.connect() as conn:  # committed, visible to the next connection checkout
        assert (await conn.execute(text("SELECT n FROM t WHERE k = 'm2'"))).scalar_one() == 12


async def test_streamed_results_keep_sqlalchemys_cursor(lite) -> None:
    async with lite.begin() as conn:
        await conn.execute(text("INSERT INTO t (k, n) VALUES (:k, :n)"), [{"k": f"s{i}", "n": i} for i in range(50)])
        stream = await conn.stream(text("SELECT n FROM t ORDER BY n"))
        assert [row.n async for row in stream] == list(range(50))


async def test_driver_errors_keep_their_classes_and_roll_back(lite) -> None:
    async with lite.begin() as conn:
        await conn.execute(text("INSERT INTO t (k, n) VALUES ('dup', 1)"))
    with pytest.raises(IntegrityError):
        async with lite.begin() as conn:
            await conn.execute(text("INSERT INTO t (k, n) VALUES ('other', 2)"))
            await conn.execute(text("INSERT INTO t (k, n) VALUES ('dup', 3)"))
    with pytest.raises(OperationalError):
        async with lite.connect() as conn:
            await conn.execute(text("SELECT * FROM missing_table"))
    async with lite.connect() as conn:  # the failed transaction left nothing behind
        assert (await conn.execute(text("SELECT k FROM t ORDER BY k"))).scalars().all() == ["dup"]


async def test_a_read_only_connection_closes_without_a_trip_and_writes_still_commit(lite) -> None:
    async with lite.connect() as conn:
        aio = (await conn.get_raw_connection()).driver_connection
    calls = []
    real = aio._execute

    async def counting(fn, *args, **kwargs):
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await real(fn, *args, **kwargs)

    aio._execute = counting
    try:
        async with lite.connect() as conn:  # the pool's one connection: the same aiosqlite object
            await conn.execute(text("SELECT count(*) FROM t"))
        assert calls == []  # the SELECT ran on the loop; closing rolled back nothing, so no trip
        async with lite.begin() as conn:
            await conn.execute(text("INSERT INTO t (k, n) VALUES ('w', 1)"))
        assert len(calls) == 1  # a real COMMIT
    finally:
        del aio._execute
    async with lite.connect() as conn:
        assert (await conn.execute(text("SELECT n FROM t WHERE k = 'w'"))).scalar_one() == 1
