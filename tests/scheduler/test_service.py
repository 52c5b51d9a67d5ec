"""LadderService, the `ladder` service of bot/journey/flow.py: start, cancel, snooze, reassign cycles."""

from __future__ import annotations

from datetime import timedelta

from scheduler.runner import SchedulerRunner
from scheduler.service import LadderService
from tests.conftest import make_settings
from tests.scheduler.conftest import add_lead, add_rep, set_lead


async def _lead(store, engine, clock, rep):
    lead_id = await add_lead(engine, clock, owner_id=rep, assigned_at=clock.now(), status="assigned")
    return await store.get_lead(lead_id)


async def test_start_is_idempotent_and_cancel_stops_it(engine, clock, actions, store) -> None:
    s = make_settings()
    runner = SchedulerRunner(engine, s, clock, actions)
    ladder = LadderService(runner.timers, s, clock)
    rep = await add_rep(engine, clock, "a")
    lead = await _lead(store, engine, clock, rep)
    await ladder.start(lead)
    await ladder.start(lead)  # a retried handler
    assert len(await runner.timers.for_lead(lead.id)) == 4
    clock.advance(timedelta(minutes=2))
    await runner.sweep_once()
    await ladder.cancel(lead, "claimed")
    clock.advance(timedelta(days=5))
    await runner.sweep_once()
    assert actions.names() == ["remind"]


async def test_start_answers_the_cards_deadline_as_stored(engine, clock, actions, store) -> None:
    """start() saves the card a read of the timers when it wrote the ladder itself; a retried
    start (the steps were stored earlier, counted from then) answers what is stored."""
    s = make_settings()
    runner = SchedulerRunner(engine, s, clock, actions)
    ladder = LadderService(runner.timers, s, clock)
    lead = await _lead(store, engine, clock, await add_rep(engine, clock, "a"))
    first = await ladder.start(lead)
    assert first is not None and first > clock.now()
    assert first == await ladder.deadline(lead)
    clock.advance(timedelta(seconds=40))  # the same day: the retry's steps are the same keys
    assert await ladder.start(lead) == first
    await ladder.cancel(lead, "claimed")
    assert await ladder.deadline(lead) is None


async def test_manual_reassign_gets_a_fresh_ladder(engine, clock, actions, store) -> None:
    s = make_settings()
    runner = SchedulerRunner(engine, s, clock, actions)
    ladder = LadderService(runner.timers, s, clock)
    a, b = await add_rep(engine, clock, "a"), await add_rep(engine, clock, "b")
    lead = await _lead(store, engine, clock, a)
    await ladder.start(lead)
    clock.advance(timedelta(minutes=3))
    await runner.sweep_once()
    await set_lead(engine, lead.id, owner_id=b, version=lead.version + 1)
    updated = await store.get_lead(lead.id)
    await ladder.cancel(updated, "reassigned")
    await ladder.start(updated)
    clock.advance(timedelta(minutes=2))
    await runner.sweep_once()
    assert [(c[0], c[3]["owner_id"]) for c in actions.calls] == [("remind", a), ("remind", b)]


async def test_snooze_pushes_the_next_steps(engine, clock, actions, store) -> None:
    s = make_settings()
    runner = SchedulerRunner(engine, s, clock, actions)
    ladder = LadderService(runner.timers, s, clock)
    lead = await _lead(store, engine, clock, await add_rep(engine, clock, "a"))
    await ladder.start(lead)
    start = clock.now()
    assert await ladder.snooze(lead, timedelta(minutes=20)) == 3
    for minute in range(1, 50):
        clock.set(start + timedelta(minutes=minute))
        await runner.sweep_once()
    assert [a - start for a in actions.at] == [timedelta(minutes=20), timedelta(minutes=22), timedelta(minutes=48)]


async def test_stage_watch_and_pool(engine, clock, actions, store) -> None:
    s = make_settings(sla={"pool_recycle": "30m"})
    runner = SchedulerRunner(engine, s, clock, actions)
    ladder = LadderService(runner.timers, s, clock)
    lead_id = await add_lead(engine, clock, stage="线索验证", stage_entered_at=clock.now(), status="pool")
    lead = await store.get_lead(lead_id)
    await ladder.stage_entered(lead)
    await ladder.pooled(lead)
    clock.advance(timedelta(minutes=30))
    await runner.sweep_once()
    assert actions.names() == ["recycle_from_pool"]
    assert not ladder.is_silent(lead)
