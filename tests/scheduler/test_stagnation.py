"""Stage stagnation alerts (owner, then manager), silence on the card, pool recycling."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from scheduler.actions import POOL_RECYCLE, STAGE_MANAGER, STAGE_OWNER
from scheduler.ladder import is_silent, plan_stagnation, stage_limit, start_pool_recycle, start_stage_watch
from scheduler.runner import SchedulerRunner
from tests.conftest import make_settings
from tests.scheduler.conftest import add_lead, add_rep, set_lead


def test_stage_limits_with_default_and_off() -> None:
    s = make_settings(sla={"stage_limits": {"需求确认": "5d", "签约交付": "0"}})
    assert stage_limit("需求确认", s) == timedelta(days=5)
    assert stage_limit("痛点诊断", s) == timedelta(days=10)  # not listed: the default
    assert stage_limit("签约交付", s) is None
    now = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai
    assert plan_stagnation(1, "签约交付", now, s) == []
    # Working time (the default): five working days is next Monday 10:00; the manager's 7.5 working
    # days (67.5 h of 9 h days) end on Wednesday at 14:30.
    assert plan_stagnation(1, "需求确认", now, s) == [
        (STAGE_OWNER, datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)),
        (STAGE_MANAGER, datetime(2026, 12, 2, 6, 30, tzinfo=timezone.utc))]
    wall = make_settings(sla={"stage_limits": {"需求确认": "5d"}, "working_time": False})
    assert plan_stagnation(1, "需求确认", now, wall) == [(STAGE_OWNER, now + timedelta(days=5)),
                                                         (STAGE_MANAGER, now + timedelta(days=7, hours=12))]


async def test_stuck_stage_alerts_owner_then_manager_once(engine, clock, actions) -> None:
    s = make_settings(sla={"stage_limits": {"需求确认": "5d"}})
    runner = SchedulerRunner(engine, s, clock, actions)
    rep = await add_rep(engine, clock, "李娜")
    lead = await add_lead(engine, clock, owner_id=rep, stage="需求确认", stage_entered_at=clock.now(),
                          claimed_at=clock.now(), status="claimed")
    await start_stage_watch(runner.timers, lead, "需求确认", clock.now(), s)
    start = clock.now()
    for day in range(1, 12):
        clock.set(start + timedelta(days=day))
        await runner.sweep_once()
    assert [(c[0], c[3]["level"], c[3]["stage"]) for c in actions.calls] == [
        ("stagnation", "owner", "需求确认"), ("stagnation", "manager", "需求确认")]
    # Five working days from Monday is the next Monday (day 7); the manager's 7.5 working days end
    # on Wednesday afternoon, seen by the Thursday sweep (day 10).
    assert [a - start for a in actions.at] == [timedelta(days=7), timedelta(days=10)]  # swept daily


async def test_advancing_the_stage_replaces_the_watch(engine, clock, actions) -> None:
    s = make_settings()
    runner = SchedulerRunner(engine, s, clock, actions)
    lead = await add_lead(engine, clock, stage="线索验证", stage_entered_at=clock.now(), status="claimed")
    await start_stage_watch(runner.timers, lead, "线索验证", clock.now(), s)
    clock.advance(timedelta(days=3))  # Thursday
    await set_lead(engine, lead, stage="痛点诊断", stage_entered_at=clock.now())
    await start_stage_watch(runner.timers, lead, "痛点诊断", clock.now(), s)
    clock.advance(timedelta(days=11, seconds=1))
    await runner.sweep_once()
    assert actions.calls == []  # the old stage's alert (ten working days: Monday, day 14) was cancelled
    clock.advance(timedelta(days=3))  # the new stage's: ten working days from Thursday
    await runner.sweep_once()
    assert [c[3]["stage"] for c in actions.calls] == ["痛点诊断"]


async def test_stage_alert_dropped_when_stage_moved_without_rewatch(engine, clock, actions) -> None:
    s = make_settings()
    runner = SchedulerRunner(engine, s, clock, actions)
    lead = await add_lead(engine, clock, stage="线索验证", stage_entered_at=clock.now(), status="claimed")
    await start_stage_watch(runner.timers, lead, "线索验证", clock.now(), s)
    await set_lead(engine, lead, stage="痛点诊断", stage_entered_at=clock.now() + timedelta(hours=1))
    clock.advance(timedelta(days=30))
    result = await runner.sweep_once()
    assert actions.calls == [] and result.skipped == 2


async def test_closed_leads_never_alert(engine, clock, actions) -> None:
    s = make_settings()
    runner = SchedulerRunner(engine, s, clock, actions)
    lead = await add_lead(engine, clock, stage="线索验证", stage_entered_at=clock.now(), status="won")
    await start_stage_watch(runner.timers, lead, "线索验证", clock.now(), s)
    clock.advance(timedelta(days=30))
    await runner.sweep_once()
    assert actions.calls == []


@dataclass
class _Lead:
    status: str
    created_at: datetime
    last_activity_at: datetime | None = None


def test_is_silent(clock) -> None:
    s = make_settings()
    now = clock.now()
    assert not is_silent(_Lead("claimed", now - timedelta(days=9), now - timedelta(hours=71)), now, s)
    assert is_silent(_Lead("claimed", now - timedelta(days=9), now - timedelta(hours=72)), now, s)
    assert is_silent(_Lead("new", now - timedelta(days=4)), now, s)  # never any activity
    assert not is_silent(_Lead("won", now - timedelta(days=9), now - timedelta(days=8)), now, s)
    assert is_silent(_Lead("claimed", now - timedelta(days=9), now - timedelta(hours=3)), now,
                     make_settings(sla={"silence_flag": "2h"}))


async def test_is_silent_on_the_crm_lead_dto(store, clock) -> None:
    from store.dto import LeadInput

    lead, _ = await store.create_lead(LeadInput(fields={"name": "王芳", "phone": "13800138000"}))
    s = make_settings()
    assert not is_silent(lead, clock.now() + timedelta(hours=71), s)
    assert is_silent(lead, clock.now() + timedelta(hours=72), s)


async def test_pool_recycle_fires_unless_claimed(engine, clock, actions) -> None:
    s = make_settings(sla={"pool_recycle": "1h"})
    runner = SchedulerRunner(engine, s, clock, actions)
    waiting = await add_lead(engine, clock, status="pool")
    taken = await add_lead(engine, clock, status="pool")
    for lead in (waiting, taken):
        spec = await start_pool_recycle(runner.timers, lead, clock.now(), s)
        assert spec is not None and spec.kind == POOL_RECYCLE
    rep = await add_rep(engine, clock, "赵强")
    clock.advance(timedelta(minutes=30))
    await set_lead(engine, taken, owner_id=rep, claimed_at=clock.now(), status="claimed")
    clock.advance(timedelta(minutes=30))
    await runner.sweep_once()
    assert [(c[0], c[1]) for c in actions.calls] == [("recycle_from_pool", waiting)]
