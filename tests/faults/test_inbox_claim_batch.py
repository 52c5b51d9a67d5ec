"""The processor claims pending rows in one statement (InboxProcessor.CLAIM_BATCH at a time):
oldest first, each row to one claimer only (several processes on PostgreSQL skip each other's
locked rows), and claimed rows it will not get to (shutting down) go back to pending without
counting as an attempt."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot.context import AppContext
from bot.handlers.inbox import InboxProcessor
from bot.metrics import Metrics
from store.inbox import Inbox
from store.models import InboxItem
from crm.sql_store import SqlCRMStore
from leadbot.logs import get_logger


async def _rows(engine) -> dict[int, tuple[str, int, str]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(InboxItem.id, InboxItem.state, InboxItem.attempts,
                                          InboxItem.lease_owner))).all()
    return {r.id: (r.state, r.attempts, r.lease_owner) for r in rows}


async def _put(inbox: Inbox, n: int) -> list[int]:
    return [await inbox.put("wecom", f"k{i}", "text", {"i": i}) for i in range(n)]


async def test_claims_the_oldest_rows_in_order_under_a_lease(engine, clock) -> None:
    inbox = Inbox(engine, clock, owner="host-a:1")
    ids = await _put(inbox, 5)
    first = await inbox.claim_pending(limit=3)
    assert [e.id for e in first] == ids[:3]
    assert [e.payload for e in first] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert all(e.attempts == 1 for e in first)
    rows = await _rows(engine)
    assert [rows[i] for i in ids] == [("processing", 1, "host-a:1")] * 3 + [("pending", 0, "")] * 2
    assert [e.id for e in await inbox.claim_pending(limit=3)] == ids[3:]
    assert await inbox.claim_pending(limit=3) == []


async def test_concurrent_claimers_never_share_a_row(engine, clock) -> None:
    a, b = Inbox(engine, clock, owner="host-a:1"), Inbox(engine, clock, owner="host-b:2")
    ids = await _put(a, 40)
    claimed: list[int] = []

    async def claimer(inbox: Inbox) -> None:
        while batch := await inbox.claim_pending(limit=3):
            claimed.extend(e.id for e in batch)

    await asyncio.gather(claimer(a), claimer(b), claimer(a), claimer(b))
    assert sorted(claimed) == ids  # every row once, none twice
    assert {state for state, _, _ in (await _rows(engine)).values()} == {"processing"}


async def test_rows_left_when_the_processor_stops_go_back_unspent(engine, clock, settings) -> None:
    inbox = Inbox(engine, clock, owner="host-a:1")
    ctx = AppContext(settings=settings, clock=clock, engine=engine, store=SqlCRMStore(engine, clock),
                     inbox=inbox, metrics=Metrics(), log=get_logger("test"))
    processor = InboxProcessor(ctx)
    processor.CLAIM_BATCH = 4  # all four claimed at once: three are never started
    processor.register_parser("wecom", lambda payload: payload)
    started, hold = asyncio.Event(), asyncio.Event()

    async def dispatch(event, _ctx):
        started.set()
        await hold.wait()

    processor.dispatch = dispatch
    ids = await _put(inbox, 4)
    task = asyncio.create_task(processor.drain())
    await started.wait()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    rows = await _rows(engine)
    assert rows[ids[0]] == ("pending", 1, "")  # the one in hand: a cancelled attempt
    assert [rows[i] for i in ids[1:]] == [("pending", 0, "")] * 3  # never started: not an attempt
