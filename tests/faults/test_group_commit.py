"""Inbox group commit: concurrent puts share commits, yet every caller gets its own row's answer
only after the commit, duplicates stay no-ops (within a batch too), and one bad row or one
cancelled caller does not take its neighbours down."""

from __future__ import annotations

import asyncio

from sqlalchemy import event, func, select

from crm_bridge.inbox import Inbox
from crm_bridge.models import InboxItem


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
    """On SQLite the inbox insert runs as one call on aiosqlite's thread (crm_bridge/inbox.py,
    _SqliteInsert), outside SQLAlchemy's execute: it must still batch, dedupe, and raise driver
    errors as SQLAlchemy's classes so an outage answers 503."""
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from crm_bridge.inbox import _store_down

    if engine.dialect.name != "sqlite":
        pytest.skip("the single-call insert is SQLite's")
    inbox = Inbox(engine, clock)
    assert inbox._sqlite is not None and inbox._sqlite.usable(engine)
    calls = []
    real = inbox._sqlite.insert

    async def counting(eng, rows):
        calls.append(len(rows))
        return await real(eng, rows)

    inbox._sqlite.insert = counting
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
