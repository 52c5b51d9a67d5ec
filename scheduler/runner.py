"""SchedulerRunner: APScheduler driving the durable timers.

One interval job sweeps the timer table every sla.sweep_interval_seconds; one cron job makes sure
the daily digest row exists. Both run with coalesce (a backlog of missed runs collapses into one),
a misfire grace and max_instances=1. The interval job only starts (or nudges) one catch-up task
and returns at once: a backlog (a restart after a weekend, a sandbox clock jump) is fired in
bounded batches in due order by that task, never by overlapping job runs, so APScheduler has no
run to skip ("maximum number of running instances reached"). APScheduler only provides the heartbeat: what is due, and
whether it already fired, is in the database, so a restart loses nothing and fires nothing twice.
The injected clock decides what "now" is; tests call sweep_once() directly with a ManualClock.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from crm.reports import ReportStore
from store.timers import TimerRow, TimerStore
from leadbot.clock import Clock
from leadbot.logs import get_logger
from leadbot.settings import Settings
from scheduler import actions as kinds
from scheduler.actions import LadderActions
from scheduler.jobs.daily_digest import fire_digest, schedule_digest
from scheduler.jobs.sweep_timers import SweepResult, sweep_timers
from scheduler.ladder import payload_of

# structlog like the rest of leadbot: stdlib logging is not configured, so its lines were lost.
log = get_logger("leadbot.scheduler")


class SchedulerRunner:
    def __init__(self, engine: Any, settings: Settings, clock: Clock, actions: LadderActions, *,
                 batch: int = 500, lease: timedelta = timedelta(minutes=5),
                 misfire_grace_seconds: int = 30, max_batches: int = 4) -> None:
        # engine: the AsyncEngine create_app owns (typed loosely: only crm_bridge imports SQLAlchemy)
        self.settings = settings
        self.clock = clock
        self.actions = actions
        self.timers = TimerStore(engine, clock)
        self.reports = ReportStore(engine)
        self.batch = batch
        self.max_batches = max_batches  # per sweep; the catch-up task loops for the rest
        self._catchup: asyncio.Task[None] | None = None
        self._again = False
        self.lease = lease
        self.misfire_grace_seconds = misfire_grace_seconds
        self.scheduler: AsyncIOScheduler | None = None
        self.last_result: SweepResult | None = None
        self._lock = asyncio.Lock()
        self._handlers = {
            kinds.REMIND: actions.remind,
            kinds.ESCALATE: actions.escalate,
            kinds.REASSIGN: actions.reassign,
            kinds.POOL_RETURN: actions.return_to_pool,
            kinds.POOL_RECYCLE: actions.recycle_from_pool,
            kinds.STAGE_OWNER: actions.stagnation,
            kinds.STAGE_MANAGER: actions.stagnation,
            kinds.ROUTE_AT_WINDOW: actions.route_at_window,
        }

    def register(self, kind: str, handler: Any) -> None:
        """Another timer kind and its action (handler(lead_id, timer_key, payload)), e.g. the
        after-effects of a tap that bot/app.py wires in."""
        self._handlers[kind] = handler

    async def start(self) -> None:
        """Fires whatever came due while leadbot was down (once), then starts the jobs."""
        if self.scheduler is not None:
            return
        await schedule_digest(self.timers, self.settings, self.clock.now())
        await self.catch_up()
        tz = self.settings.calendar.tz
        sched = AsyncIOScheduler(timezone=tz, job_defaults={
            "coalesce": True, "misfire_grace_time": self.misfire_grace_seconds, "max_instances": 1})
        sched.add_job(self._sweep_job, IntervalTrigger(seconds=self.settings.sla.sweep_interval_seconds,
                                                       timezone=tz),
                      id="sweep_timers", name="sweep_timers", replace_existing=True)
        hh, _, mm = self.settings.sla.digest_time.partition(":")
        sched.add_job(self._digest_job, CronTrigger(hour=int(hh), minute=int(mm), timezone=tz),
                      id="daily_digest", name="daily_digest", replace_existing=True)
        sched.start()
        self.scheduler = sched

    async def stop(self) -> None:
        if self.scheduler is None:
            return
        self.scheduler.pause()
        # Let a sweep in progress finish (shutdown would cancel it mid-batch and leave rows
        # `firing` until the lease runs out); a run queued behind it is cancelled harmlessly.
        async with self._lock:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
            task, self._catchup = self._catchup, None
        if task is not None and not task.done():
            task.cancel()  # it holds no row: it stops between sweeps, waiting for the lock
            await asyncio.gather(task, return_exceptions=True)

    async def catch_up(self) -> SweepResult:
        """Sweeps until nothing due is left: bounded batches, oldest first, each timer once."""
        total = SweepResult()
        while True:
            self._again = False
            result = await self.sweep_once()
            total.add(result)
            if not (result.more or self._again):
                return total
            if total.fired + total.skipped >= self.batch * self.max_batches:
                log.info("scheduler.catching_up", fired=total.fired, skipped=total.skipped)
            await asyncio.sleep(0)  # let callbacks and deliveries in between batches

    async def sweep_once(self) -> SweepResult:
        async with self._lock:
            result = await sweep_timers(self.timers, self.dispatch, self.clock.now(), batch=self.batch,
                                        max_batches=self.max_batches, lease=self.lease)
        self.last_result = result
        if result.fired or result.failed or result.requeued:
            log.info("scheduler.timers_swept", fired=result.fired, skipped=result.skipped,
                     failed=result.failed, requeued=result.requeued)
        return result

    async def dispatch(self, timer: TimerRow) -> None:
        if timer.kind == kinds.DIGEST:
            await fire_digest(timer, self.timers, self.reports, self.settings, self.actions, self.clock.now())
            return
        handler = self._handlers.get(timer.kind)
        if handler is None:
            raise LookupError(f"no action for timer kind {timer.kind!r}")
        assert timer.lead_id is not None
        await handler(timer.lead_id, timer.key, payload_of(timer))
        if timer.kind == kinds.POOL_RETURN:
            # The lead left its owner: whatever remains of the current owner's steps is moot.
            await self.timers.cancel(timer.lead_id, (kinds.REMIND, kinds.ESCALATE, kinds.REASSIGN))

    async def _sweep_job(self) -> None:
        if self._catchup is not None and not self._catchup.done():
            self._again = True  # the running catch-up looks again before it ends
            return
        self._catchup = asyncio.get_running_loop().create_task(self._catch_up_task())

    async def _catch_up_task(self) -> None:
        try:
            await self.catch_up()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a database hiccup must not end the sweeping
            log.exception("scheduler.sweep_failed")

    async def _digest_job(self) -> None:
        try:
            await schedule_digest(self.timers, self.settings, self.clock.now())
            await self._sweep_job()
        except Exception:  # noqa: BLE001
            log.exception("scheduler.digest_schedule_failed")

    def jobs(self) -> list[dict[str, Any]]:
        if self.scheduler is None:
            return []
        return [{"id": j.id, "trigger": str(j.trigger), "next_run_time": j.next_run_time}
                for j in self.scheduler.get_jobs()]
