"""Pool recycling and stage limits count the team's working time, like the first-touch ladder:
played at frozen instants across a week (a weekday, a weekday night, Sunday, a holiday, a 调休
Saturday, a team in Berlin) with the injected clock. Each timer is planned by LadderService, the
object leadbot itself calls, and fires through the sweep exactly when the calendar says: not a
second before.

The week: Wednesday 2026-12-02 is a holiday and Saturday 2026-12-05 is worked to pay for it (调休);
working hours 09:00-18:00 (9 h a day). The 柏林 team works Berlin's hours without those days.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from scheduler.runner import SchedulerRunner
from scheduler.service import LadderService
from tests.conftest import make_settings
from tests.scheduler.conftest import RecordingActions, add_lead, add_rep

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
CALENDAR = {"holidays": ["2026-12-02"], "extra_workdays": ["2026-12-05"],
            "teams": {"柏林": {"timezone": "Europe/Berlin", "holidays": [], "extra_workdays": []}}}
SLA = {"pool_recycle": "4h", "stage_limits": {"需求确认": "2d"}}


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


# (case, team, pooled at) -> when the pool recycle fires: 4 working hours later.
POOL = {
    "tuesday 10:00": ("", sh(2026, 12, 1, 10, 0), sh(2026, 12, 1, 14, 0)),
    "weekday night, the holiday after": ("", sh(2026, 12, 1, 22, 0), sh(2026, 12, 3, 13, 0)),
    "sunday 03:00": ("", sh(2026, 11, 29, 3, 0), sh(2026, 11, 30, 13, 0)),
    "on the holiday": ("", sh(2026, 12, 2, 10, 0), sh(2026, 12, 3, 13, 0)),
    "friday 16:00 into the 调休 saturday": ("", sh(2026, 12, 4, 16, 0), sh(2026, 12, 5, 11, 0)),
    "柏林 at 03:00 Berlin time": ("柏林", sh(2026, 12, 1, 10, 0), datetime(2026, 12, 1, 13, 0, tzinfo=BERLIN)),
}

# (case, team, entered at) -> (owner alert, manager alert): "2d" is two working days at the same
# hour for the owner, three (2d x 1.5) for the manager.
STAGE = {
    "monday 10:00, over the holiday": ("", sh(2026, 11, 30, 10, 0), sh(2026, 12, 3, 10, 0), sh(2026, 12, 4, 10, 0)),
    "friday 15:00, the 调休 saturday counts": ("", sh(2026, 12, 4, 15, 0), sh(2026, 12, 7, 15, 0),
                                              sh(2026, 12, 8, 15, 0)),
    # Counted from the opening of the next window, two working days end at the close of the
    # second (its quiet hours then hold the alert until the next window opens).
    "weekday night counts from the next window": ("", sh(2026, 12, 3, 22, 0), sh(2026, 12, 5, 18, 0),
                                                  sh(2026, 12, 7, 18, 0)),
    "sunday 03:00": ("", sh(2026, 11, 29, 3, 0), sh(2026, 12, 1, 18, 0), sh(2026, 12, 3, 18, 0)),
    "柏林 keeps its own days": ("柏林", sh(2026, 12, 1, 10, 0), datetime(2026, 12, 2, 18, 0, tzinfo=BERLIN),
                              datetime(2026, 12, 3, 18, 0, tzinfo=BERLIN)),
}


async def fired_at(runner: SchedulerRunner, actions: RecordingActions, clock, when: datetime) -> list[str]:
    """What fires at `when`; whatever fires by a second before is reported as early."""
    seen = len(actions.calls)
    clock.set(when - timedelta(seconds=1))
    await runner.sweep_once()
    if len(actions.calls) > seen:
        return ["early: " + ", ".join(actions.names()[seen:])]
    clock.set(when)
    await runner.sweep_once()
    return actions.names()[seen:]


@pytest.mark.parametrize("case", POOL)
async def test_pool_recycle_counts_the_teams_working_time(case: str, engine, clock) -> None:
    team, pooled_at, due = POOL[case]
    s = make_settings(calendar=CALENDAR, sla=SLA)
    actions = RecordingActions(clock)
    runner = SchedulerRunner(engine, s, clock, actions)
    clock.set(pooled_at)
    lead = await add_lead(engine, clock, status="pool")
    await LadderService(runner.timers, s, clock).pooled(SimpleNamespace(id=lead), team=team)
    assert await fired_at(runner, actions, clock, due) == ["recycle_from_pool"], case


@pytest.mark.parametrize("case", STAGE)
async def test_stage_limits_count_working_days_of_the_owners_team(case: str, engine, clock) -> None:
    team, entered, owner_due, manager_due = STAGE[case]
    s = make_settings(calendar=CALENDAR, sla=SLA)
    actions = RecordingActions(clock)
    runner = SchedulerRunner(engine, s, clock, actions)
    clock.set(entered)
    rep = await add_rep(engine, clock, "李娜")
    lead = await add_lead(engine, clock, owner_id=rep, status="claimed", claimed_at=entered, stage="需求确认",
                          stage_entered_at=entered)
    await LadderService(runner.timers, s, clock).stage_entered(
        SimpleNamespace(id=lead, stage="需求确认", stage_entered_at=entered), team=team)
    assert await fired_at(runner, actions, clock, owner_due) == ["stagnation"], case
    assert await fired_at(runner, actions, clock, manager_due) == ["stagnation"], case
    assert [c[3]["level"] for c in actions.calls] == ["owner", "manager"]


async def test_on_the_wall_clock_nothing_waits_for_the_calendar(engine, clock) -> None:
    """[sla] working_time = false: the same limits run around the clock, weekend or holiday."""
    s = make_settings(calendar=CALENDAR, sla={**SLA, "working_time": False})
    actions = RecordingActions(clock)
    runner = SchedulerRunner(engine, s, clock, actions)
    sunday = sh(2026, 11, 29, 3, 0)
    clock.set(sunday)
    pooled = await add_lead(engine, clock, status="pool")
    rep = await add_rep(engine, clock, "李娜")
    staged = await add_lead(engine, clock, owner_id=rep, status="claimed", claimed_at=sunday, stage="需求确认",
                            stage_entered_at=sunday)
    ladder = LadderService(runner.timers, s, clock)
    await ladder.pooled(SimpleNamespace(id=pooled))
    await ladder.stage_entered(SimpleNamespace(id=staged, stage="需求确认", stage_entered_at=sunday))
    assert await fired_at(runner, actions, clock, sunday + timedelta(hours=4)) == ["recycle_from_pool"]
    assert await fired_at(runner, actions, clock, sunday + timedelta(days=2)) == ["stagnation"]
