"""The first-touch ladder end to end on the manual clock: exact working-time instants, order,
cancellation on claim, reassign, restarts and racing sweepers."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from store.timers import TimerStore
from leadbot.clock import ManualClock
from scheduler.actions import ESCALATE, POOL_RETURN, REASSIGN, REMIND
from scheduler import ladder
from scheduler.ladder import cancel_ladder, ladder_specs, plan_first_touch, start_ladder
from scheduler.runner import SchedulerRunner
from tests.conftest import make_settings
from tests.scheduler.conftest import RecordingActions, add_lead, add_rep, set_lead

SH = ZoneInfo("Asia/Shanghai")
_REP_NUMBERS = itertools.count(1)


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


async def _assigned_lead(engine, clock, owner: int | None = None) -> int:
    if owner is None:
        owner = await add_rep(engine, clock, f"rep{next(_REP_NUMBERS)}")
    return await add_lead(engine, clock, owner_id=owner, assigned_at=clock.now(), status="assigned")


async def _walk(runner: SchedulerRunner, clock: ManualClock, plan) -> None:
    """For each step: one second before it nothing fires; at it, exactly that step fires."""
    for kind, due in plan:
        clock.set(due - timedelta(seconds=1))
        before = len(runner.actions.calls)
        await runner.sweep_once()
        assert len(runner.actions.calls) == before, f"{kind} fired early"
        clock.set(due)
        result = await runner.sweep_once()
        assert result.fired == 1, kind


def test_plan_counts_working_time() -> None:
    s = make_settings()
    plan = plan_first_touch(1, sh(2026, 11, 23, 10, 0), s)
    assert plan == [(REMIND, sh(2026, 11, 23, 10, 2)), (ESCALATE, sh(2026, 11, 23, 10, 4)),
                    (REASSIGN, sh(2026, 11, 23, 10, 30)), (POOL_RETURN, sh(2026, 11, 25, 16, 0))]
    wall = plan_first_touch(1, sh(2026, 11, 20, 17, 59), make_settings(sla={"working_time": False}))
    assert [d for _, d in wall] == [sh(2026, 11, 20, 18, 1), sh(2026, 11, 20, 18, 3), sh(2026, 11, 20, 18, 29),
                                    sh(2026, 11, 21, 17, 59)]


def test_plan_across_weekend_and_holiday() -> None:
    s = make_settings(calendar={"holidays": ["2026-11-23"]})  # the Monday is a holiday
    plan = dict(plan_first_touch(1, sh(2026, 11, 20, 17, 59), s))
    assert plan[REMIND] == sh(2026, 11, 24, 9, 1)  # Fri 1 min, then Tuesday
    assert plan[ESCALATE] == sh(2026, 11, 24, 9, 3)
    assert plan[REASSIGN] == sh(2026, 11, 24, 9, 29)
    assert plan[POOL_RETURN] == sh(2026, 11, 26, 14, 59)  # 24 working hours: Fri 1m, Tue 9h, Wed 9h, Thu 5h59m


def test_two_steps_of_one_kind_stay_two(monkeypatch) -> None:
    """A second reminder (a step of a kind already in the ladder) is a step of its own: its own
    name, key and time, not folded into the first."""
    steps = ((REMIND, "remind", "first_touch_remind"), (REMIND, "remind_again", "first_touch_escalate"),
             (ESCALATE, "escalate", "first_touch_reassign"), (POOL_RETURN, "pool_return", "pool_return"))
    monkeypatch.setattr(ladder, "_STEPS", steps)
    specs = ladder_specs(1, sh(2026, 11, 23, 10, 0), make_settings(), epoch="e")
    assert [s.payload["step"] for s in specs] == ["remind", "remind_again", "escalate", "pool_return"]
    assert [s.key for s in specs] == ["ft:1:e:0:remind", "ft:1:e:0:remind_again", "ft:1:e:0:escalate",
                                      "ft:1:e:pool_return"]
    assert specs[0].due_at < specs[1].due_at


async def test_whole_ladder_fires_in_order_at_working_time_instants(engine, clock, actions) -> None:
    settings = make_settings()
    runner = SchedulerRunner(engine, settings, clock, actions)
    rep = await add_rep(engine, clock, "张伟")
    lead = await _assigned_lead(engine, clock, rep)
    specs = await start_ladder(runner.timers, lead, clock.now(), settings, owner_id=rep)
    plan = plan_first_touch(lead, clock.now(), settings)
    await _walk(runner, clock, plan)
    assert actions.names() == ["remind", "escalate", "reassign", "return_to_pool"]
    assert actions.at == [due for _, due in plan]
    assert actions.keys() == [s.key for s in specs]
    assert all(c[3]["owner_id"] == rep and c[3]["attempt"] == 0 for c in actions.calls)
    # Nothing fires twice, however long we go on sweeping.
    for _ in range(5):
        clock.advance(timedelta(days=3))
        await runner.sweep_once()
    assert len(actions.calls) == 4


async def test_ladder_over_a_weekend_and_holiday(engine, actions) -> None:
    clock = ManualClock(sh(2026, 11, 20, 17, 59))
    actions.clock = clock
    settings = make_settings(calendar={"holidays": ["2026-11-23"]})
    runner = SchedulerRunner(engine, settings, clock, actions)
    lead = await _assigned_lead(engine, clock)
    await start_ladder(runner.timers, lead, clock.now(), settings)
    # Saturday, Sunday and the Monday holiday pass without a word.
    for hours in range(1, 63):
        clock.set(sh(2026, 11, 20, 17, 59) + timedelta(hours=hours))
        await runner.sweep_once()
    assert clock.now() < sh(2026, 11, 24, 9, 1) and actions.calls == []
    await _walk(runner, clock, plan_first_touch(lead, sh(2026, 11, 20, 17, 59), settings))
    assert actions.at == [sh(2026, 11, 24, 9, 1), sh(2026, 11, 24, 9, 3), sh(2026, 11, 24, 9, 29),
                          sh(2026, 11, 26, 14, 59)]


async def test_claim_cancels_the_rest_of_the_ladder(engine, clock, actions) -> None:
    settings = make_settings()
    runner = SchedulerRunner(engine, settings, clock, actions)
    lead = await _assigned_lead(engine, clock)
    await start_ladder(runner.timers, lead, clock.now(), settings)
    clock.advance(timedelta(minutes=2))
    await runner.sweep_once()
    assert actions.names() == ["remind"]
    clock.advance(timedelta(minutes=1))
    await set_lead(engine, lead, claimed_at=clock.now(), status="claimed")
    assert await cancel_ladder(runner.timers, lead) == 3
    clock.advance(timedelta(days=10))
    await runner.sweep_once()
    assert actions.names() == ["remind"]
    states = {t.kind: t.state for t in await runner.timers.for_lead(lead)}
    assert states == {REMIND: "fired", ESCALATE: "cancelled", REASSIGN: "cancelled", POOL_RETURN: "cancelled"}


async def test_a_missed_cancel_is_caught_by_the_guard(engine, clock, actions) -> None:
    """First contact recorded but nobody called cancel_ladder: the steps are dropped, not sent."""
    settings = make_settings()
    runner = SchedulerRunner(engine, settings, clock, actions)
    lead = await _assigned_lead(engine, clock)
    await start_ladder(runner.timers, lead, clock.now(), settings)
    clock.advance(timedelta(minutes=1))
    await set_lead(engine, lead, first_contact_at=clock.now())
    clock.advance(timedelta(days=5))
    result = await runner.sweep_once()
    assert actions.calls == [] and result.skipped == 4


async def test_reassign_restarts_the_steps_for_the_new_owner(engine, clock, actions) -> None:
    settings = make_settings()
    runner = SchedulerRunner(engine, settings, clock, actions)
    first, second = await add_rep(engine, clock, "a"), await add_rep(engine, clock, "b")
    lead = await _assigned_lead(engine, clock, first)
    start = clock.now()
    await start_ladder(runner.timers, lead, start, settings, owner_id=first)

    async def on_call(name, lead_id, key, payload):
        if name == "reassign":  # what the lead's routing wiring does
            await set_lead(engine, lead_id, owner_id=second, assigned_at=clock.now())
            await start_ladder(runner.timers, lead_id, clock.now(), settings, owner_id=second,
                               epoch=payload["epoch"], attempt=payload["attempt"] + 1)

    actions.on_call = on_call
    for minute in range(1, 61):
        clock.set(start + timedelta(minutes=minute))
        await runner.sweep_once()
    assert actions.names() == ["remind", "escalate", "reassign", "remind", "escalate", "reassign"]
    assert [c[3]["owner_id"] for c in actions.calls] == [first] * 3 + [second] * 3
    assert [a - start for a in actions.at] == [timedelta(minutes=m) for m in (2, 4, 30, 32, 34, 60)]
    clock.set(start + timedelta(days=7))
    await runner.sweep_once()
    # The cycle's pool deadline stays the first assignment's, and fires once.
    assert actions.names().count("return_to_pool") == 1
    assert len(set(actions.keys())) == len(actions.keys())


async def test_restart_in_the_middle_loses_and_doubles_nothing(engine, clock) -> None:
    settings = make_settings()
    first_life = RecordingActions(clock)
    runner = SchedulerRunner(engine, settings, clock, first_life)
    lead = await _assigned_lead(engine, clock)
    await start_ladder(runner.timers, lead, clock.now(), settings)
    clock.advance(timedelta(minutes=2))
    await runner.sweep_once()
    await runner.stop()
    assert first_life.names() == ["remind"]

    # Down from 10:03 to 10:40: escalate (10:04) and reassign (10:30) came due meanwhile.
    clock.advance(timedelta(minutes=38))
    second_life = RecordingActions(clock)
    runner2 = SchedulerRunner(engine, settings, clock, second_life)
    await runner2.start()
    try:
        assert second_life.names() == ["escalate", "reassign"]
        await runner2.sweep_once()
        await SchedulerRunner(engine, settings, clock, second_life).sweep_once()
        assert second_life.names() == ["escalate", "reassign"]
    finally:
        await runner2.stop()
    # Start-up also scheduled the day's digest row, once.
    assert (await runner2.timers.get("digest:2026-11-23")) is not None


async def test_crash_between_claim_and_action_is_retried_with_the_same_key(engine, clock, actions) -> None:
    settings = make_settings()
    lead = await _assigned_lead(engine, clock)
    store = TimerStore(engine, clock)
    await start_ladder(store, lead, clock.now(), settings)
    clock.advance(timedelta(minutes=2))
    [claimed] = await store.take_due(clock.now())  # ... and the process dies before the action
    runner = SchedulerRunner(engine, settings, clock, actions, lease=timedelta(minutes=5))
    await runner.sweep_once()
    assert actions.calls == []  # another process may still be working on it
    clock.advance(timedelta(minutes=5, seconds=1))
    await runner.sweep_once()
    assert actions.names()[0] == "remind" and actions.keys()[0] == claimed.key
    assert actions.names().count("remind") == 1


async def test_failing_action_is_retried_with_backoff(engine, clock, actions) -> None:
    settings = make_settings()
    runner = SchedulerRunner(engine, settings, clock, actions)
    lead = await _assigned_lead(engine, clock)
    await start_ladder(runner.timers, lead, clock.now(), settings)
    clock.advance(timedelta(minutes=2))
    actions.fail_next = 1
    result = await runner.sweep_once()
    assert result.failed == 1 and actions.calls == []
    clock.advance(timedelta(seconds=11))
    await runner.sweep_once()
    assert actions.names() == ["remind"]


@pytest.mark.parametrize("sweepers", [2, 4])
async def test_each_timer_fires_once_when_sweepers_race(engine, clock, sweepers: int) -> None:
    settings = make_settings()
    recorders = [RecordingActions(clock) for _ in range(sweepers)]
    runners = [SchedulerRunner(engine, settings, clock, r, batch=7) for r in recorders]
    leads = [await _assigned_lead(engine, clock) for _ in range(30)]
    for lead in leads:
        await start_ladder(runners[0].timers, lead, clock.now(), settings)
    clock.advance(timedelta(days=7))
    await asyncio.gather(*(r.catch_up() for r in runners))
    await asyncio.gather(*(r.catch_up() for r in runners))
    keys = [k for r in recorders for k in r.keys()]
    assert len(keys) == 30 * 4
    assert len(set(keys)) == len(keys)


def test_the_card_counts_to_the_escalation_then_says_it_was_missed() -> None:
    from datetime import datetime, timedelta, timezone

    from scheduler.actions import ESCALATE, POOL_RETURN, REASSIGN, REMIND
    from scheduler.ladder import card_deadline

    t0 = datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)
    at = [t0 + timedelta(minutes=m) for m in (2, 4, 30, 120)]
    ladder = list(zip((REMIND, ESCALATE, REASSIGN, POOL_RETURN), at))
    assert card_deadline(ladder) == at[1]  # the escalation, not the reminder before it
    assert card_deadline(ladder[2:], missed=[at[1]]) == at[1]  # escalated: overdue since then
    assert card_deadline(ladder[2:]) == at[2]  # no escalation step at all: the next step
    assert card_deadline([], missed=[at[1]]) is None  # nothing left to count to
