"""The durable timer table: idempotent scheduling, cancellation, claiming each row once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from store.timers import TimerSpec, TimerStore
from leadbot.clock import ManualClock


async def test_schedule_is_idempotent_on_key(timers: TimerStore, clock: ManualClock) -> None:
    due = clock.now() + timedelta(minutes=2)
    assert await timers.schedule("k1", "ladder.remind", 7, due, {"a": 1})
    assert not await timers.schedule("k1", "ladder.remind", 7, due + timedelta(hours=1), {"a": 2})
    row = await timers.get("k1")
    assert row is not None and row.due_at == due and row.payload == {"a": 1} and row.state == "pending"
    assert row.due_at.tzinfo is not None


async def test_naive_due_at_is_refused(timers: TimerStore) -> None:
    with pytest.raises(ValueError):
        await timers.schedule("k", "x", 1, datetime(2026, 1, 1))


async def test_take_due_claims_only_due_rows_in_order(timers: TimerStore, clock: ManualClock) -> None:
    now = clock.now()
    await timers.schedule_many([TimerSpec("late", "x", 1, now + timedelta(seconds=5), {}),
                                TimerSpec("b", "x", 1, now - timedelta(seconds=1), {}),
                                TimerSpec("a", "x", 1, now - timedelta(seconds=9), {})])
    got = await timers.take_due(now)
    assert [t.key for t in got] == ["a", "b"]
    assert all(t.state == "firing" for t in got)
    assert await timers.take_due(now) == []
    await timers.finish([t.id for t in got])
    assert (await timers.get("a")).state == "fired"
    assert (await timers.counts()) == {"fired": 2, "pending": 1}


async def test_cancel_by_lead_and_kind(timers: TimerStore, clock: ManualClock) -> None:
    due = clock.now()
    await timers.schedule_many([TimerSpec("r", "ladder.remind", 1, due, {}), TimerSpec("s", "stage.owner", 1, due, {}),
                                TimerSpec("o", "ladder.remind", 2, due, {})])
    assert await timers.cancel(1, ["ladder.remind"]) == 1
    assert sorted(t.key for t in await timers.take_due(due)) == ["o", "s"]
    assert (await timers.get("r")).state == "cancelled"
    # Cancelling again, or a fired row, changes nothing.
    assert await timers.cancel(1) == 0


async def test_retry_then_fail_after_max_attempts(timers: TimerStore, clock: ManualClock) -> None:
    await timers.schedule("k", "x", 1, clock.now())
    for attempt in range(1, TimerStore.MAX_ATTEMPTS + 1):
        clock.advance(timedelta(minutes=10))
        [t] = await timers.take_due(clock.now())
        state = await timers.retry_later(t, clock.now(), "boom")
        assert state == ("failed" if attempt == TimerStore.MAX_ATTEMPTS else "pending")
    row = await timers.get("k")
    assert row.state == "failed" and row.attempts == TimerStore.MAX_ATTEMPTS


async def test_stale_firing_rows_are_requeued_after_the_lease(timers: TimerStore, clock: ManualClock) -> None:
    await timers.schedule("k", "x", 1, clock.now())
    [t] = await timers.take_due(clock.now())  # the process dies here
    assert await timers.requeue_stale(clock.now(), timedelta(minutes=5)) == 0
    clock.advance(timedelta(minutes=6))
    assert await timers.requeue_stale(clock.now(), timedelta(minutes=5)) == 1
    [again] = await timers.take_due(clock.now())
    assert again.key == t.key


async def test_racing_claimers_get_disjoint_rows(engine, clock: ManualClock) -> None:
    """Several stores on one engine (on PostgreSQL, real SKIP LOCKED between connections)."""
    stores = [TimerStore(engine, clock) for _ in range(4)]
    now = clock.now()
    await stores[0].schedule_many(TimerSpec(f"k{i}", "x", i, now - timedelta(seconds=i), {}) for i in range(200))
    results = await asyncio.gather(*(s.take_due(now, limit=30) for s in stores for _ in range(3)))
    keys = [t.key for batch in results for t in batch]
    assert len(keys) == len(set(keys))
    rest = await stores[0].take_due(now, limit=1000)
    assert len(keys) + len(rest) == 200
    assert {t.key for t in rest}.isdisjoint(keys)


async def test_next_due_and_for_lead(timers: TimerStore, clock: ManualClock) -> None:
    assert await timers.next_due() is None
    t0 = clock.now() + timedelta(hours=1)
    await timers.schedule("a", "x", 5, t0 + timedelta(minutes=1))
    await timers.schedule("b", "x", 5, t0)
    assert await timers.next_due() == t0
    assert [t.key for t in await timers.for_lead(5)] == ["b", "a"]
    assert (await timers.next_due()).tzinfo == timezone.utc


async def test_a_renewed_timer_lease_holds_and_a_lost_one_finishes_nothing(engine, clock: ManualClock) -> None:
    """Two hosts' sweepers: the one firing a timer renews its lease while the action runs, so the
    other never takes it back; once it stops renewing (hung past the lease) the other takes it,
    and the former holder's finish writes nothing."""
    a = TimerStore(engine, clock, owner="host-a:10:aaaa0001")
    b = TimerStore(engine, clock, owner="host-b:20:bbbb0002")
    await a.schedule("slow", "x", 1, clock.now())
    [t] = await a.take_due(clock.now(), lease=timedelta(minutes=5))
    for _ in range(4):  # 4 x 3 minutes of a slow action, renewed each time
        clock.advance(timedelta(minutes=3))
        assert await a.renew([t.id], timedelta(minutes=5)) == {t.id}
        assert await b.requeue_stale(clock.now()) == 0
        assert await b.take_due(clock.now()) == []
    clock.advance(timedelta(minutes=6))  # host-a hung: no renewal
    assert await b.requeue_stale(clock.now()) == 1
    [again] = await b.take_due(clock.now())
    assert await a.renew([t.id]) == set()
    assert await a.finish([t.id]) == 0  # fenced: the row is b's now
    await a.retry_later(t, clock.now(), "late")
    row = await a.get("slow")
    assert row.state == "firing" and row.attempts == 0
    assert await b.finish([again.id]) == 1
    assert (await a.get("slow")).state == "fired"


async def test_the_sweep_renews_its_batch_while_actions_run(engine, clock: ManualClock) -> None:
    """sweep_timers keeps its batch's leases fresh while a slow action runs (the heartbeat's
    interval is a third of the lease, in real time: a 0.3 s lease here)."""
    from scheduler.jobs.sweep_timers import sweep_timers

    a = TimerStore(engine, clock, owner="host-a:10:aaaa0001")
    b = TimerStore(engine, clock, owner="host-b:20:bbbb0002")
    await a.schedule("slow", "x", None, clock.now())  # no lead: nothing for the guard to drop
    lease = timedelta(seconds=0.3)
    seen: list[int] = []

    async def slow_action(timer) -> None:
        for _ in range(3):
            clock.advance(timedelta(seconds=0.2))  # the action's own time passes the lease ...
            await asyncio.sleep(0.25)  # ... while the heartbeat renews it
            seen.append(await b.requeue_stale(clock.now(), lease))

    result = await sweep_timers(a, slow_action, clock.now(), lease=lease)
    assert result.fired == 1 and seen == [0, 0, 0]
    assert (await a.get("slow")).state == "fired"


async def test_a_dead_sweepers_timers_on_this_host_come_back_at_once(engine, clock: ManualClock) -> None:
    import subprocess
    import sys

    from store.leases import process_identity

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    host = process_identity().split(":")[0]
    dead = TimerStore(engine, clock, owner=f"{host}:{proc.pid}:deadbeef")
    alive = TimerStore(engine, clock, owner=f"other-host:{proc.pid}:cafe0001")
    await dead.schedule("a", "x", None, clock.now())
    await dead.take_due(clock.now())
    await alive.schedule("b", "x", None, clock.now())
    await alive.take_due(clock.now())
    me = TimerStore(engine, clock)
    assert await me.requeue_stale(clock.now()) == 1  # the killed sweeper's, not the other host's
    assert (await me.get("a")).state == "pending" and (await me.get("b")).state == "firing"
