from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_bridge.db import session_factory
from crm_bridge.models import Rep
from crm_bridge.outbox import NewOutboxItem, OutboxRepo, enqueue_in
from leadbot.clock import ManualClock
from tests.notifications.conftest import add_rep, lead_card


async def test_enqueue_is_insert_or_ignore(repo: OutboxRepo) -> None:
    first = await repo.enqueue(lead_card(1, "u1", 10))
    again = await repo.enqueue(lead_card(1, "u1", 10))
    assert first is not None and again is None
    assert (await repo.counts()) == {"pending": 1}


async def test_enqueue_commits_and_rolls_back_with_the_callers_change(
        engine: AsyncEngine, repo: OutboxRepo, clock: ManualClock) -> None:
    rep_id = await add_rep(engine, clock, wecom="zhangsan")
    sessions = session_factory(engine)
    # The cause (here: a rep change) and its message commit together...
    async with sessions() as session, session.begin():
        (await session.get(Rep, rep_id)).name = "张三"
        await enqueue_in(session, lead_card(rep_id, "zhangsan", 1), clock.now())
    assert await repo.get_by_key(f"lead:1:offer:{rep_id}") is not None
    # ...and roll back together.
    with pytest.raises(RuntimeError):
        async with sessions() as session, session.begin():
            (await session.get(Rep, rep_id)).name = "李四"
            await enqueue_in(session, lead_card(rep_id, "zhangsan", 2), clock.now())
            raise RuntimeError("the change failed")
    assert await repo.get_by_key(f"lead:2:offer:{rep_id}") is None
    # A plain connection works too.
    async with engine.begin() as conn:
        await repo.enqueue(lead_card(rep_id, "zhangsan", 3), conn=conn)
    assert (await repo.counts()) == {"pending": 2}


async def test_lease_hides_a_row_until_it_expires_then_hands_it_out_as_redelivery(
        repo: OutboxRepo, clock: ManualClock) -> None:
    await repo.enqueue(lead_card(1, "u1", 10))
    [first] = await repo.take_due(10, lease_seconds=60)
    assert first.state == "sending" and first.attempts == 1 and not first.redelivery
    assert await repo.take_due(10) == []
    clock.advance(61)
    [again] = await repo.take_due(10, lease_seconds=60)
    assert again.id == first.id and again.attempts == 2 and again.redelivery
    # The worker that lost its lease cannot overwrite the new owner's outcome.
    assert not await repo.mark_sent(first, {"msgid": "stale"})
    assert await repo.mark_sent(again, {"msgid": "m1"})
    row = await repo.get(first.id)
    assert row.state == "sent" and row.result == {"msgid": "m1"}


async def test_not_before_and_urgent_first(repo: OutboxRepo, clock: ManualClock) -> None:
    await repo.enqueue(lead_card(1, "u1", 1, not_before=clock.now() + timedelta(minutes=5)))
    await repo.enqueue(lead_card(1, "u1", 2))
    await repo.enqueue(lead_card(1, "u1", 3, urgent=True))
    taken = await repo.take_due(10)
    assert [e.lead_id for e in taken] == [3, 2]


async def test_defer_gives_the_attempt_back(repo: OutboxRepo, clock: ManualClock) -> None:
    await repo.enqueue(lead_card(1, "u1", 1))
    [e] = await repo.take_due(10)
    assert await repo.defer(e, clock.now() + timedelta(hours=1), "quiet hours")
    row = await repo.get(e.id)
    assert row.state == "pending" and row.attempts == 0


async def test_set_delivery(engine: AsyncEngine, repo: OutboxRepo, clock: ManualClock) -> None:
    rep_id = await add_rep(engine, clock, wecom="u1")
    assert await repo.set_delivery(rep_id, "text")
    assert (await repo.rep_contacts([rep_id]))[rep_id].delivery == "text"
    assert not await repo.set_delivery(999999, "card")
    with pytest.raises(ValueError):
        await repo.set_delivery(rep_id, "pigeon")
    # auto -> both only when the rep had not chosen explicitly
    assert not await repo.switch_auto_to_both(rep_id)
    await repo.set_delivery(rep_id, "auto")
    assert await repo.switch_auto_to_both(rep_id)


async def test_new_item_keys_are_capped(repo: OutboxRepo) -> None:
    key = "x" * 500
    await repo.enqueue(NewOutboxItem(key=key, channel="wecom", kind="text", recipient="u"))
    assert await repo.get_by_key(key[:400]) is not None


async def test_enqueue_many_reports_new_rows_in_order(repo: OutboxRepo) -> None:
    await repo.enqueue(lead_card(1, "u1", 2))
    ids = await repo.enqueue_many([lead_card(1, "u1", 1), lead_card(1, "u1", 2), lead_card(1, "u1", 3),
                                   lead_card(1, "u1", 1)])
    assert ids[0] is not None and ids[1] is None and ids[2] is not None and ids[3] is None
    assert (await repo.counts()) == {"pending": 3}


async def test_a_retry_after_a_failed_attempt_is_a_redelivery_a_deferral_is_not(
        repo: OutboxRepo, clock: ManualClock) -> None:
    """A send that timed out may still have reached the platform: its retry must be handed out as
    a redelivery, so the adapter treats "task_id already used" as delivered, not as a failure."""
    await repo.enqueue(lead_card(1, "u1", 11))
    await repo.enqueue(lead_card(1, "u1", 12))
    first, second = await repo.take_due(10, lease_seconds=60)
    assert not first.redelivery and not second.redelivery
    assert await repo.mark_retry(first, "send timed out", clock.now())
    assert await repo.defer(second, clock.now(), "quiet hours")
    again = {e.id: e for e in await repo.take_due(10, lease_seconds=60)}
    assert again[first.id].redelivery and again[first.id].attempts == 2
    assert not again[second.id].redelivery and again[second.id].attempts == 1
