"""The APScheduler side: explicit timezone, coalescing, misfire grace, one instance at a time."""

from __future__ import annotations

from datetime import timedelta

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from scheduler.ladder import start_ladder
from scheduler.runner import SchedulerRunner
from tests.conftest import make_settings
from tests.scheduler.conftest import add_lead, add_rep


async def test_jobs_are_configured_explicitly(engine, clock, actions) -> None:
    s = make_settings(sla={"sweep_interval_seconds": 2.5, "digest_time": "17:30"},
                      calendar={"timezone": "Asia/Urumqi"})
    runner = SchedulerRunner(engine, s, clock, actions, misfire_grace_seconds=45)
    await runner.start()
    try:
        sched = runner.scheduler
        assert str(sched.timezone) == "Asia/Urumqi"
        jobs = {j.id: j for j in sched.get_jobs()}
        assert set(jobs) == {"sweep_timers", "daily_digest"}
        for job in jobs.values():
            assert job.coalesce is True and job.misfire_grace_time == 45 and job.max_instances == 1
        sweep, digest = jobs["sweep_timers"].trigger, jobs["daily_digest"].trigger
        assert isinstance(sweep, IntervalTrigger) and sweep.interval == timedelta(seconds=2.5)
        assert isinstance(digest, CronTrigger) and str(digest.timezone) == "Asia/Urumqi"
        assert "hour='17'" in str(digest) and "minute='30'" in str(digest)
        await runner.start()  # idempotent
        assert len(sched.get_jobs()) == 2
    finally:
        await runner.stop()
    assert runner.scheduler is None


async def test_due_while_down_fires_at_start_once(engine, clock, actions) -> None:
    s = make_settings()
    rep = await add_rep(engine, clock, "a")
    lead = await add_lead(engine, clock, owner_id=rep, assigned_at=clock.now(), status="assigned")
    runner = SchedulerRunner(engine, s, clock, actions)
    await start_ladder(runner.timers, lead, clock.now(), s, owner_id=rep)
    clock.advance(timedelta(minutes=3))  # leadbot was down at 10:02
    await runner.start()
    await runner.stop()
    assert actions.names() == ["remind"]
    again = SchedulerRunner(engine, s, clock, actions)
    await again.start()
    await again.stop()
    assert actions.names() == ["remind"]


async def test_the_interval_job_really_sweeps(engine, clock, actions) -> None:
    """One real tick of the interval job (0.05 s), not a sleep through an SLA."""
    import asyncio

    s = make_settings(sla={"sweep_interval_seconds": 0.05})
    rep = await add_rep(engine, clock, "a")
    lead = await add_lead(engine, clock, owner_id=rep, assigned_at=clock.now(), status="assigned")
    runner = SchedulerRunner(engine, s, clock, actions)
    await runner.start()
    try:
        await start_ladder(runner.timers, lead, clock.now(), s, owner_id=rep)
        clock.advance(timedelta(minutes=2))
        for _ in range(100):
            if actions.calls:
                break
            await asyncio.sleep(0.02)
        assert actions.names() == ["remind"]
    finally:
        await runner.stop()


async def test_a_weekend_gap_is_caught_up_in_due_order_once_without_skipped_runs(
        engine, clock, actions, caplog) -> None:
    """A sandbox jump (or a restart) over a weekend: 60 timers come due at once while each action
    is slow. The interval job keeps ticking every 20 ms; the backlog is fired by one catch-up task
    in batches of 5, oldest first, every timer exactly once, and APScheduler skips no run."""
    import asyncio
    import logging
    from datetime import datetime
    from zoneinfo import ZoneInfo

    sh = ZoneInfo("Asia/Shanghai")
    clock.set(datetime(2026, 11, 27, 17, 50, tzinfo=sh))  # Friday, ten minutes before closing
    s = make_settings(sla={"sweep_interval_seconds": 0.02})
    rep = await add_rep(engine, clock, "a")
    runner = SchedulerRunner(engine, s, clock, actions, batch=5, max_batches=2)
    leads = [await add_lead(engine, clock, owner_id=rep, assigned_at=clock.now(), status="assigned")
             for _ in range(20)]
    for lead in leads:
        await start_ladder(runner.timers, lead, clock.now(), s, owner_id=rep)

    async def slow(*_):
        await asyncio.sleep(0.005)

    actions.on_call = slow
    caplog.set_level(logging.WARNING, logger="apscheduler")
    await runner.start()
    try:
        clock.set(datetime(2026, 11, 30, 10, 0, tzinfo=sh))  # Monday 10:00: remind, escalate, reassign due
        for _ in range(300):
            if len(actions.calls) >= 60:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # a few more ticks: nothing fires twice
    finally:
        await runner.stop()
    assert actions.names() == ["remind"] * 20 + ["escalate"] * 20 + ["reassign"] * 20
    assert len(set(actions.keys())) == 60
    assert not [r for r in caplog.records if "maximum number of running instances" in r.getMessage()]
