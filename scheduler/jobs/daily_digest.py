"""The daily manager digest, driven through a timer row so it is sent once per day even with
several processes (and still sent when leadbot was down at digest time: it fires at start).

The cron job and the start-up only make sure the row `digest:{local date}` exists; the sweep
fires it, builds one report per managed team, renders the chart and hands both to the action.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from crm.reports import ReportStore
from store.timers import TimerRow, TimerStore
from leadbot.logs import get_logger
from leadbot.settings import Settings
from scheduler.actions import DIGEST, LadderActions
from scheduler.digest import build_digest, digest_teams, next_digest_at, previous_digest_at, render_chart
from scheduler.ladder import work_calendar

log = get_logger("leadbot.scheduler")

# A cron run a little late (or a restart just after digest time) still schedules today's digest.
DIGEST_GRACE = timedelta(hours=2)


async def schedule_digest(timers: TimerStore, settings: Settings, now: datetime) -> str:
    """Ensures the row for the next digest (today's if it is at most DIGEST_GRACE past)."""
    at = next_digest_at(now - DIGEST_GRACE, settings)
    day = work_calendar(settings.calendar).local_date(at)
    key = f"digest:{day.isoformat()}"
    await timers.schedule(key, DIGEST, None, at,
                          {"day": day.isoformat(), "window_start": previous_digest_at(at, settings).isoformat()})
    return key


async def fire_digest(timer: TimerRow, timers: TimerStore, reports: ReportStore, settings: Settings,
                      actions: LadderActions, now: datetime) -> int:
    start_text = timer.payload.get("window_start")
    start = datetime.fromisoformat(start_text) if start_text else None
    sent = 0
    for team in digest_teams(await reports.teams()):
        report = await build_digest(reports, settings, now, team=team, start=start)
        try:
            png = await asyncio.to_thread(render_chart, report, settings.server.language)
        except Exception as e:  # noqa: BLE001 - a digest without its picture beats no digest
            log.warning("scheduler.digest_chart_failed", error=repr(e)[:300])
            png = None
        key = timer.key if team is None else f"{timer.key}:team:{team.id}"
        await actions.digest(report, png, key)
        sent += 1
    # The next working day's digest row; idempotent on its key.
    await schedule_digest(timers, settings, max(now, timer.due_at) + DIGEST_GRACE + timedelta(seconds=1))
    return sent
