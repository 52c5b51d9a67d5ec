"""Inbox group commit: concurrent puts share commits, yet every caller gets its own row's answer
only after the commit, duplicates stay no-ops (within a batch too), and one bad row or one
cancelled caller does not take its neighbours down."""

from __future__ import annotations

import asyncio

from sqlalchemy import event, func, select

from store.inbox import Inbox
from store.models import InboxItem


async def _rows(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(InboxItem))).scalar_one()


async def test_concurrent_puts_share_commits_and_keep_dedupe(engine, clock) -> None:
    inbox = Inbox(engine, clock)
    commits = []
    event.listen(engine.sync_engine, "commit", lambda conn: commits.append(1))
    keys = [f"k{i % 150}" for i in range(200)]  # 50 keys twice, some inside the same batch
    results = await asyncio.gather(*(inbox.put("wecom", k, "event:x", {"i": i}) for i, k in enumerate(keys)))
    stored = [r for r in results if r is not None]
    assert len(stored) == 150 and len(set(stored)) == 150
    # the first caller of each key got the id, its repeat got None
    first = {}
    for k, r in zip(keys, results):
        first.setdefault(k, r)
    assert all(v is not None for v in first.values())
    assert await _rows(engine) == 150
    assert len(commits) < 50, f"{len(commits)} commits for 200 puts: not batched"
    # a later retry of any of them is a no-op
    assert await inbox.put("wecom", "k7", "event:x", {}) is None


async def test_every_answer_follows_its_commit(engine, clock) -> None:
    inbox = Inbox(engine, clock)
    ids = await asyncio.gather(*(inbox.put("dingtalk", f"d{i}", "e", {}) for i in range(40)))
    async with engine.connect() as conn:
        stored = set((await conn.execute(select(InboxItem.id))).scalars())
    assert set(ids) <= stored  # every id handed out is visible to another connection


async def test_a_bad_row_fails_only_its_own_caller(engine, clock) -> None:
    inbox = Inbox(engine, clock)
    bad = {"x": object()}  # not JSON-serialisable: its insert fails
    results = await asyncio.gather(inbox.put("wecom", "good-1", "e", {}), inbox.put("wecom", "bad", "e", bad),
                                   inbox.put("wecom", "good-2", "e", {}), return_exceptions=True)
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert isinstance(results[1], Exception)
    assert await _rows(engine) == 2


async def test_a_cancelled_caller_does_not_strand_the_batch(engine, clock) -> None:
    inbox = Inbox(engine, clock)
    tasks = [asyncio.create_task(inbox.put("wecom", f"c{i}", "e", {})) for i in range(20)]
    await asyncio.sleep(0)
    tasks[0].cancel()
    tasks[5].cancel()
    done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=10)
    assert all(isinstance(r, int) for i, r in enumerate(done) if i not in (0, 5))
    # a cancelled caller was never acknowledged; its row may or may not be stored, and its retry is safe
    again = await inbox.put("wecom", "c0", "e", {})
    assert await _rows(engine) == 20 and (again is None or isinstance(again, int))


async def test_per_request_mode_still_works(engine, clock) -> None:
    inbox = Inbox(engine, clock, group_commit=False)
    a, b = await asyncio.gather(inbox.put("wecom", "same", "e", {}), inbox.put("wecom", "same", "e", {}))
    assert sorted([a is None, b is None]) == [False, True]


async def test_keys_that_no_column_accepts_are_made_storable(engine, clock) -> None:
    inbox = Inbox(engine, clock)
    first = await inbox.put("dingtalk", "dingtalk:robot:\ud800\x00", "robot\x00", {"t": "\ud800"})
    assert first is not None
    assert await inbox.put("dingtalk", "dingtalk:robot:\ud800\x00", "robot\x00", {}) is None


async def test_sqlite_single_call_insert_batches_and_keeps_error_classes(engine, clock) -> None:
    """On SQLite the inbox insert runs as one call on aiosqlite's thread (store/inbox.py,
    _SqliteInsert), outside SQLAlchemy's execute: it must still batch, dedupe, and raise driver
    errors as SQLAlchemy's classes so an outage answers 503."""
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from store.inbox import _store_down

    if engine.dialect.name != "sqlite":
        pytest.skip("the single-call insert is SQLite's")
    inbox = Inbox(engine, clock)
    assert inbox._sqlite is not None and inbox._sqlite.usable(engine)
    calls = []
    real, real_here = inbox._sqlite.insert, inbox._sqlite.insert_here

    async def counting(eng, rows):
        calls.append(len(rows))
        return await real(eng, rows)

    def counting_here(rows):
        calls.append(len(rows))
        return real_here(rows)

    inbox._sqlite.insert = counting
    inbox._sqlite.insert_here = counting_here
    keys = [f"s{i % 150}" for i in range(200)]
    results = await asyncio.gather(*(inbox.put("wecom", k, "event:x", {"i": i}) for i, k in enumerate(keys)))
    assert len([r for r in results if r is not None]) == 150 and await _rows(engine) == 150
    assert len(calls) < 50, f"{len(calls)} inserts for 200 puts: not batched"
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE inbox RENAME TO inbox_away"))
    with pytest.raises(OperationalError) as refused:
        await inbox.put("wecom", "while-away", "e", {})
    assert _store_down(refused.value)
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE inbox_away RENAME TO inbox"))
    assert isinstance(await inbox.put("wecom", "while-away", "e", {}), int)
    assert await inbox.put("wecom", "while-away", "e", {}) is None


def _sqlite_only(engine) -> None:
    import pytest

    if engine.dialect.name != "sqlite":
        pytest.skip("the loop-thread insert is SQLite's")


async def test_sqlite_loop_thread_insert_stores_rows_as_the_sqlalchemy_path_does(engine, clock) -> None:
    """The loop-thread path (store/inbox.py, _SqliteInsert.insert_here) writes through its own
    connection: the rows must read back through SQLAlchemy exactly as the awaited path stores them."""
    _sqlite_only(engine)
    fast = Inbox(engine, clock)
    payload = {"Content": "跟进客户 \u2028", "n": 3, "nested": {"a": [1, None, True]}}
    here_calls = []
    real_here = fast._sqlite.insert_here
    fast._sqlite.insert_here = lambda rows: here_calls.append(len(rows)) or real_here(rows)
    a = await fast.put("wecom", "fast", "text", payload)
    assert here_calls == [1]
    slow = Inbox(engine, clock, group_commit=False)  # one transaction through SQLAlchemy
    b = await slow.put("wecom", "slow", "text", payload)
    one, two = await fast.get(a), await fast.get(b)
    assert (one.payload, one.kind, one.platform, one.received_at) == (two.payload, two.kind, two.platform,
                                                                      two.received_at)
    assert one.received_at == clock.now()
    fast.close()


async def test_sqlite_loop_thread_insert_never_waits_for_another_writer(engine, clock, tmp_path) -> None:
    """Another connection holds the write lock: the put must not block the event loop (busy
    timeout 0, then the awaited path waits on aiosqlite's thread), and completes once the lock
    is released."""
    import sqlite3
    import threading
    import time

    _sqlite_only(engine)
    inbox = Inbox(engine, clock)
    assert await inbox.put("wecom", "warm", "e", {}) is not None  # schema and connection ready
    other = sqlite3.connect(engine.url.database, timeout=0, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    # Released from another thread: a put that blocked the loop would still finish, late, and
    # show up as a long gap between the loop's ticks instead of hanging the test.
    release = threading.Timer(2.0, lambda: (other.execute("COMMIT"), other.close()))
    release.start()
    put = asyncio.create_task(inbox.put("wecom", "while-locked", "e", {"x": 1}))
    gaps, last = [], time.monotonic()
    for _ in range(20):
        await asyncio.sleep(0.01)
        gaps.append(time.monotonic() - last)
        last = time.monotonic()
    assert max(gaps) < 1.0, f"the event loop stalled for {max(gaps):.2f} s behind the lock"
    assert not put.done()  # waiting for the lock, off the loop
    row_id = await asyncio.wait_for(put, timeout=30)
    assert isinstance(row_id, int) and await _rows(engine) == 2
    inbox.close()


async def test_sqlite_loop_thread_insert_only_for_a_wal_file(tmp_path, clock) -> None:
    """In-memory databases are private to a connection and a rollback journal would make readers
    wait on this writer: both keep the awaited path (and still store everything)."""
    from store.db import create_engine
    from store.inbox import _SqliteInsert
    from store.migrate import upgrade

    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import StaticPool

    for url in ("sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:",
                "sqlite+aiosqlite:///file:shared?mode=memory&cache=shared&uri=true"):
        memory = create_async_engine(url, poolclass=StaticPool)
        assert _SqliteInsert.for_engine(memory).path is None, url
        await memory.dispose()

    path = tmp_path / "rollback.db"
    eng = create_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade(eng)
    async with eng.connect() as conn:
        from sqlalchemy import text

        await conn.execute(text("PRAGMA journal_mode=DELETE"))
    inbox = Inbox(eng, clock)
    assert await inbox.put("wecom", "k", "e", {}) is not None
    assert inbox._sqlite.path is None  # found the journal mode and stopped trying
    assert await _rows(eng) == 1
    inbox.close()
    await eng.dispose()
