"""The daily manager digest: counts from the database, per-rep first response in working time,
the PNG chart, and its firing through a timer row once a day."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from crm.reports import ReportStore
from leadbot.clock import ManualClock
from scheduler.digest import build_digest, next_digest_at, previous_digest_at, render_chart
from scheduler.runner import SchedulerRunner
from tests.conftest import make_settings
from tests.scheduler.conftest import add_lead, add_rep, add_team

SH = ZoneInfo("Asia/Shanghai")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


async def _seed(engine, clock: ManualClock) -> dict:
    """Monday 2026-11-23 in Shanghai; the previous digest was Friday 18:00."""
    mgr = await add_rep(engine, clock, "王经理", role="manager")
    team = await add_team(engine, clock, "华东", manager_id=mgr)
    a = await add_rep(engine, clock, "张伟", team)
    b = await add_rep(engine, clock, "李娜", team)
    mon10 = sh(2026, 11, 23, 10, 0)
    common = {"team_id": team, "created_at": mon10, "assigned_at": mon10, "last_activity_at": mon10}
    await add_lead(engine, clock, owner_id=a, claimed_at=mon10 + timedelta(minutes=5), status="claimed", **common)
    await add_lead(engine, clock, owner_id=b, first_contact_at=mon10 + timedelta(minutes=20), status="assigned",
                   **common)
    await add_lead(engine, clock, owner_id=a, status="assigned", **common)  # untouched: overdue by 18:00
    old = sh(2026, 11, 5, 10, 0)  # ten working days in the stage by Thursday 19th: stuck on Monday
    await add_lead(engine, clock, owner_id=b, team_id=team, status="claimed", stage="痛点诊断",
                   stage_entered_at=old, created_at=old, assigned_at=old, claimed_at=old, last_activity_at=old)
    await add_lead(engine, clock, owner_id=b, team_id=team, status="won", stage="痛点诊断",
                   stage_entered_at=old, created_at=old, assigned_at=old, claimed_at=old, last_activity_at=old)
    fri = sh(2026, 11, 20, 17, 58)
    await add_lead(engine, clock, owner_id=a, team_id=team, status="claimed", created_at=fri, assigned_at=fri,
                   claimed_at=sh(2026, 11, 23, 9, 1), last_activity_at=sh(2026, 11, 23, 9, 1))
    # Another team's lead stays out of this team's digest.
    other = await add_team(engine, clock, "华南")
    await add_lead(engine, clock, team_id=other, status="new", created_at=mon10, last_activity_at=mon10)
    return {"team": team, "manager": mgr, "a": a, "b": b}


def test_digest_window_follows_working_days() -> None:
    s = make_settings()
    assert previous_digest_at(sh(2026, 11, 23, 18, 0), s) == sh(2026, 11, 20, 18, 0)  # Monday covers the weekend
    assert next_digest_at(sh(2026, 11, 20, 18, 1), s) == sh(2026, 11, 23, 18, 0)
    assert next_digest_at(sh(2026, 11, 20, 18, 0), s) == sh(2026, 11, 20, 18, 0)


async def test_digest_data_is_right(engine, clock) -> None:
    ids = await _seed(engine, clock)
    s = make_settings()
    reports = ReportStore(engine)
    [team] = [t for t in await reports.teams() if t.id == ids["team"]]
    report = await build_digest(reports, s, sh(2026, 11, 23, 18, 0), team=team)
    assert report.window_start == sh(2026, 11, 20, 18, 0)
    assert (report.new, report.claimed, report.overdue) == (3, 2, 1)
    assert report.stuck_by_stage == (("痛点诊断", 1),)
    assert report.silent == 1  # the stuck one: no activity for 18 days
    assert report.team_name == "华东" and report.manager_id == ids["manager"]
    by_rep = {r.name: r for r in report.first_response}
    # 张伟: 5 min, and 3 working minutes across the weekend (Fri 17:58 -> Mon 09:01) -> median 4 min.
    assert by_rep["张伟"].leads == 2 and by_rep["张伟"].median_seconds == 240 and by_rep["张伟"].max_seconds == 300
    assert by_rep["李娜"].leads == 1 and by_rep["李娜"].median_seconds == 1200
    assert [r.name for r in report.first_response] == ["李娜", "张伟"]  # slowest first

    everyone = await build_digest(reports, s, sh(2026, 11, 23, 18, 0))
    assert everyone.new == 4


async def test_chart_is_a_valid_png(engine, clock) -> None:
    await _seed(engine, clock)
    reports = ReportStore(engine)
    report = await build_digest(reports, make_settings(), sh(2026, 11, 23, 18, 0))
    png = render_chart(report)
    assert png.startswith(PNG_MAGIC) and len(png) > 5000
    from PIL import Image

    img = Image.open(io.BytesIO(png))
    img.verify()
    assert img.size == (900, 320)
    empty = render_chart(await build_digest(reports, make_settings(), sh(2020, 1, 6, 18, 0)), language="en")
    assert empty.startswith(PNG_MAGIC)


def test_names_fall_back_to_pinyin_without_a_cjk_font() -> None:
    from scheduler import digest

    assert digest._latin("张伟") == "Zhang Wei"
    assert digest._latin("Alice") == "Alice"


async def test_digest_fires_once_per_working_day_through_a_timer(engine, clock, actions) -> None:
    ids = await _seed(engine, clock)
    s = make_settings()
    runner = SchedulerRunner(engine, s, clock, actions)
    await runner.start()
    try:
        clock.set(sh(2026, 11, 23, 18, 0))
        await runner.sweep_once()
        await SchedulerRunner(engine, s, clock, actions).sweep_once()  # a second process
        assert len(actions.digests) == 1
        report, png, key = actions.digests[0]
        assert key == f"digest:2026-11-23:team:{ids['team']}"
        assert report.overdue == 1 and png.startswith(PNG_MAGIC)
        # Next one on Tuesday; a restart in between does not add another for Monday.
        nxt = await runner.timers.get("digest:2026-11-24")
        assert nxt is not None and nxt.due_at == sh(2026, 11, 24, 18, 0)
        await runner._digest_job()
        clock.set(sh(2026, 11, 24, 18, 0))
        await runner.sweep_once()
        assert [k for _, _, k in actions.digests] == [f"digest:2026-11-23:team:{ids['team']}",
                                                      f"digest:2026-11-24:team:{ids['team']}"]
        assert actions.digests[1][0].window_start == sh(2026, 11, 23, 18, 0)
    finally:
        await runner.stop()


async def test_start_just_after_digest_time_sends_it_and_skips_the_weekend(engine, actions) -> None:
    clock = ManualClock(sh(2026, 11, 20, 19, 0))  # Friday, an hour after digest time: leadbot was down
    runner = SchedulerRunner(engine, make_settings(), clock, actions)
    await runner.start()
    await runner.stop()
    assert [k for _, _, k in actions.digests] == ["digest:2026-11-20"]  # no managed team: company-wide
    assert actions.digests[0][0].team_id is None
    row = await runner.timers.get("digest:2026-11-23")  # Saturday and Sunday have none
    assert row is not None and row.due_at == sh(2026, 11, 23, 18, 0)
