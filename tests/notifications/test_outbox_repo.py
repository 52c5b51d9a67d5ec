from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Sequence

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import session_factory
from store.models import OutboxItem, Rep
from store.outbox import DueBatch, NewOutboxItem, OutboxEntry, OutboxRepo, enqueue_in
from leadbot.clock import ManualClock
from tests.conftest import PG_URL
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


# ---- leasing order and limit ----------------------------------------------------------------


async def test_leases_urgent_first_then_by_due_time_then_id(repo: OutboxRepo, clock: ManualClock) -> None:
    """Ids are given in the opposite order of due times, so ordering by id (or by creation, all
    at the same instant here) instead of by due time puts the rows in the wrong order."""
    t0 = clock.now()

    def due_in(lead_id: int, seconds: int, **kw: Any) -> NewOutboxItem:
        return lead_card(1, "u1", lead_id, not_before=t0 + timedelta(seconds=seconds), **kw)

    late = await repo.enqueue(due_in(1, 40))  # lowest id, due last
    tie_a = await repo.enqueue(due_in(2, 30))
    tie_b = await repo.enqueue(due_in(3, 30))  # same due time as tie_a: id decides
    early = await repo.enqueue(due_in(4, 10))  # higher id than late, due earlier
    urgent_late = await repo.enqueue(due_in(5, 50, urgent=True))
    urgent_early = await repo.enqueue(due_in(6, 45, urgent=True))
    not_due = await repo.enqueue(due_in(7, 120))
    clock.advance(60)
    taken = await repo.take_due(10)
    assert [e.id for e in taken] == [urgent_early, urgent_late, early, tie_a, tie_b, late]
    assert (await repo.get(not_due)).state == "pending"


async def test_limit_leases_exactly_the_first_rows_in_order_and_leaves_the_rest_pending(
        repo: OutboxRepo, clock: ManualClock) -> None:
    t0 = clock.now()
    # Six rows due in the reverse order of their ids, then an urgent one due last.
    ids = await repo.enqueue_many([lead_card(1, "u1", i, not_before=t0 + timedelta(seconds=60 - 10 * i))
                                   for i in range(6)])
    urgent = await repo.enqueue(lead_card(1, "u1", 99, urgent=True, not_before=t0 + timedelta(seconds=65)))
    clock.advance(70)
    by_due = [urgent, *reversed(ids)]

    first = await repo.take_due(3, lease_seconds=600)
    assert [e.id for e in first] == by_due[:3]
    assert (await repo.counts()) == {"sending": 3, "pending": 4}
    assert sorted(e.id for e in await repo.list(("pending",))) == sorted(by_due[3:])

    second = await repo.take_due(3, lease_seconds=600)
    assert [e.id for e in second] == by_due[3:6]
    third = await repo.take_due(3, lease_seconds=600)
    assert [e.id for e in third] == by_due[6:]
    assert await repo.take_due(3) == []
    assert (await repo.counts()) == {"sending": 7}


# ---- redelivery ------------------------------------------------------------------------------


async def test_redelivery_and_attempts_through_retry_and_expired_lease(repo: OutboxRepo, clock: ManualClock) -> None:
    row_id = await repo.enqueue(lead_card(1, "u1", 1))
    [a] = await repo.take_due(10, lease_seconds=60)
    assert a.id == row_id and a.attempts == 1 and not a.redelivery
    assert a.state == "sending" and a.next_attempt_at == clock.now() + timedelta(seconds=60)
    stored = await repo.get(row_id)
    assert stored.state == "sending" and stored.attempts == 1 and stored.next_attempt_at == a.next_attempt_at

    # Put back after a failed attempt: not due before its retry time, then a redelivery.
    assert await repo.mark_retry(a, "send timed out", clock.now() + timedelta(seconds=30))
    assert await repo.take_due(10) == []
    clock.advance(30)
    fresh = await repo.enqueue(lead_card(1, "u1", 2))
    b, new = await repo.take_due(10, lease_seconds=60)
    assert b.id == row_id and b.attempts == 2 and b.redelivery and b.last_error == "send timed out"
    # The flag is per row: a fresh row leased in the same batch is not a redelivery.
    assert new.id == fresh and new.attempts == 1 and not new.redelivery

    # Lease expired (the worker died): nothing before the expiry, a redelivery after it.
    clock.advance(59)
    assert await repo.take_due(10, lease_seconds=60) == []
    clock.advance(2)
    c, new_again = await repo.take_due(10, lease_seconds=60)
    assert c.id == row_id and c.attempts == 3 and c.redelivery
    assert new_again.id == fresh and new_again.attempts == 2 and new_again.redelivery
    assert (await repo.get(row_id)).attempts == 3
    assert await repo.mark_sent(c, {"msgid": "m1"})
    assert not await repo.mark_sent(b, {"msgid": "stale"})


# ---- take_batch -----------------------------------------------------------------------------


def _item(key: str, channel: str, kind: str, recipient: str, rep_id: int | None = None, **kw: Any) -> NewOutboxItem:
    return NewOutboxItem(key=key, channel=channel, kind=kind, recipient=recipient, payload={"text": key},
                         rep_id=rep_id, **kw)


async def _sent_now(repo: OutboxRepo, item: NewOutboxItem) -> None:
    """Enqueues, leases and sends one row at the clock's time (nothing else may be due)."""
    await repo.enqueue(item)
    [e] = await repo.take_due(10)
    assert e.idempotency_key == item.key and await repo.mark_sent(e, {"msgid": item.key})


async def test_take_batch_returns_the_leased_rows_their_reps_and_their_recipients_recent_sends(
        engine: AsyncEngine, repo: OutboxRepo, clock: ManualClock) -> None:
    r1 = await add_rep(engine, clock, wecom="u1", dingtalk="d1")
    r2 = await add_rep(engine, clock, wecom="u2", dingtalk="d2")
    r3 = await add_rep(engine, clock, wecom="u3")
    t0 = clock.now()
    since = t0 + timedelta(minutes=5)

    # Sent history.
    await _sent_now(repo, _item("old", "wecom", "card", "u1", r1))  # before `since`
    clock.set(t0 + timedelta(minutes=10))
    await _sent_now(repo, _item("u1-card", "wecom", "card", "u1", r1))  # counted
    clock.set(t0 + timedelta(minutes=11))
    await _sent_now(repo, _item("u1-update", "wecom", "card_update", "u1", r1))  # uncounted kind
    clock.set(t0 + timedelta(minutes=12))
    await _sent_now(repo, _item("d2-text", "dingtalk", "text", "d2", r2))  # counted
    clock.set(t0 + timedelta(minutes=13))
    await _sent_now(repo, _item("u3-card", "wecom", "card", "u3", r3))  # not a recipient of the batch
    clock.set(t0 + timedelta(minutes=14))
    await _sent_now(repo, _item("u1-on-dingtalk", "dingtalk", "text", "u1"))  # u1, but not on the batch's channel
    clock.set(t0 + timedelta(minutes=15))
    await _sent_now(repo, _item("hook-old", "wecom_robot", "robot", "hook"))  # channel not windowed

    # Due rows, and one of r3's that is not due yet.
    clock.set(t0 + timedelta(minutes=20))
    due = await repo.enqueue_many([
        _item("b1", "wecom", "card", "u1", r1), _item("b2", "dingtalk", "card", "d2", r2),
        _item("b3", "wecom_robot", "robot", "hook")])
    later = await repo.enqueue(_item("b4", "wecom", "card", "u3", r3, not_before=clock.now() + timedelta(hours=1)))

    batch = await repo.take_batch(10, clock.now(), lease_seconds=60, sends_since=since,
                                  windowed_channels={"wecom", "dingtalk"}, uncounted_kinds=("card_update",))
    assert [e.id for e in batch.entries] == due
    assert all(e.state == "sending" and e.attempts == 1 and not e.redelivery for e in batch.entries)
    assert [(await repo.get(i)).state for i in due] == ["sending"] * 3
    assert (await repo.get(later)).state == "pending"
    assert set(batch.reps) == {r1, r2}
    assert batch.reps == await repo.rep_contacts([r1, r2])
    assert batch.reps[r1].wecom_userid == "u1" and batch.reps[r2].dingtalk_userid == "d2"
    assert batch.sends == [("wecom", "u1", t0 + timedelta(minutes=10)), ("dingtalk", "d2", t0 + timedelta(minutes=12))]

    # Everything due is leased now: the next tick reads nothing, sends included.
    assert await repo.take_batch(10, clock.now(), lease_seconds=60, sends_since=since,
                                 windowed_channels={"wecom", "dingtalk"}) == DueBatch([], {}, [])
    # Expired leases come back through take_batch too, as redeliveries, `limit` applied.
    clock.advance(61)
    again = await repo.take_batch(2, clock.now(), lease_seconds=60, sends_since=since,
                                  windowed_channels={"wecom"})
    assert [e.id for e in again.entries] == due[:2]
    assert all(e.redelivery and e.attempts == 2 for e in again.entries)
    assert set(again.reps) == {r1, r2}
    assert again.sends == [("wecom", "u1", t0 + timedelta(minutes=10)), ("wecom", "u1", t0 + timedelta(minutes=11))]


async def test_take_batch_on_an_empty_outbox(repo: OutboxRepo, clock: ManualClock) -> None:
    assert await repo.take_batch(10, clock.now(), lease_seconds=60, sends_since=clock.now() - timedelta(hours=1),
                                 windowed_channels={"wecom", "dingtalk"}) == DueBatch([], {}, [])


# ---- concurrent callers ---------------------------------------------------------------------


async def _assert_each_row_leased_once(repo: OutboxRepo, ids: list[int], taken: Sequence[Sequence[OutboxEntry]],
                                       attempts: int) -> None:
    leased = [e.id for batch in taken for e in batch]
    assert len(leased) == len(set(leased)), "a row was leased by two callers"
    assert sorted(leased) == sorted(ids), "some due rows were not leased"
    assert all(e.attempts == attempts and e.redelivery == (attempts > 1) for batch in taken for e in batch)
    # A row leased twice would have been counted twice.
    assert {e.id: e.attempts for e in await repo.list(("sending",), limit=len(ids) + 1)} == {i: attempts for i in ids}


async def test_concurrent_take_due_callers_never_share_a_row(
        engine: AsyncEngine, repo: OutboxRepo, clock: ManualClock) -> None:
    ids = await repo.enqueue_many([lead_card(1, f"u{i % 3}", i) for i in range(40)])
    other = OutboxRepo(engine, clock)
    for attempt in (1, 2, 3):  # fresh rows, then twice the same rows back after their leases expired
        taken = await asyncio.gather(repo.take_due(20, lease_seconds=60), other.take_due(20, lease_seconds=60))
        await _assert_each_row_leased_once(repo, ids, taken, attempt)
        clock.advance(61)


async def test_concurrent_take_due_and_take_batch_never_share_a_row(
        engine: AsyncEngine, repo: OutboxRepo, clock: ManualClock) -> None:
    rep_id = await add_rep(engine, clock, wecom="u1")
    ids = await repo.enqueue_many([lead_card(rep_id, "u1", i) for i in range(30)])
    other = OutboxRepo(engine, clock)
    for attempt in (1, 2, 3):
        now = clock.now()
        batch, entries = await asyncio.gather(
            repo.take_batch(15, now, lease_seconds=60, sends_since=now - timedelta(hours=1),
                            windowed_channels={"wecom"}),
            other.take_due(15, now, lease_seconds=60))
        await _assert_each_row_leased_once(repo, ids, [batch.entries, entries], attempt)
        assert set(batch.reps) == {rep_id}
        clock.advance(61)


@pytest.mark.skipif(not PG_URL, reason="row locks and SKIP LOCKED: PostgreSQL only")
async def test_rows_locked_by_another_transaction_are_skipped_not_waited_for(
        engine: AsyncEngine, repo: OutboxRepo) -> None:
    ids = await repo.enqueue_many([lead_card(1, "u1", i) for i in range(4)])
    async with engine.connect() as conn:
        tx = await conn.begin()
        # Another process in the middle of leasing the first two rows.
        await conn.execute(select(OutboxItem.id).where(OutboxItem.id.in_(ids[:2])).with_for_update())
        taken = await asyncio.wait_for(repo.take_due(10), timeout=10)
        assert [e.id for e in taken] == ids[2:]
        await tx.rollback()
    assert [e.id for e in await repo.take_due(10)] == ids[:2]
