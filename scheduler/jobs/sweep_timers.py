"""The interval job: fire every due timer row, once.

Cost per sweep follows the due rows, not the open ones: take_due walks the (state, due_at)
index from its start and stops at `now`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from store.leases import Heartbeat
from store.timers import TimerRow, TimerStore
from leadbot.logs import get_logger
from scheduler.ladder import still_applies

log = get_logger("leadbot.scheduler")

Dispatch = Callable[[TimerRow], Awaitable[None]]


@dataclass(slots=True)
class SweepResult:
    fired: int = 0
    skipped: int = 0  # the lead moved on (claimed, advanced, closed): dropped without an action
    failed: int = 0  # the action raised: retried later with the same key
    requeued: int = 0  # stale `firing` rows of a dead process handed back
    more: bool = False  # stopped at max_batches with a full batch: more may be due (catch up)

    def add(self, other: "SweepResult") -> None:
        self.fired += other.fired
        self.skipped += other.skipped
        self.failed += other.failed
        self.requeued += other.requeued
        self.more = other.more


async def sweep_timers(timers: TimerStore, dispatch: Dispatch, now: datetime, *, batch: int = 500,
                       max_batches: int = 50, lease: timedelta = timedelta(minutes=5)) -> SweepResult:
    """Fires what is due at `now`, oldest first, at most `max_batches` batches of `batch` rows;
    `more` tells the caller to come back for the rest (SchedulerRunner catches up in a loop)."""
    result = SweepResult()
    result.requeued = await timers.requeue_stale(now, lease)
    for n in range(max_batches):
        due = await timers.take_due(now, batch, lease=lease)
        if not due:
            break
        # The batch's leases are renewed while its actions run: a slow batch is not taken back
        # by another process's sweep, and one taken back anyway (this one stalled past the lease)
        # is not finished here (finish/drop/retry_later are fenced on the holder).
        async with Heartbeat(lambda ids=[t.id for t in due]: _renewed(timers, ids, lease),
                             lease.total_seconds() / 3, log=log, name="timers"):
            n_done, n_dropped = await _fire_batch(timers, dispatch, due, now, result)
        result.fired += n_done
        result.skipped += n_dropped
        if len(due) < batch:
            break
        result.more = n == max_batches - 1
    return result


async def _renewed(timers: TimerStore, ids: list[int], lease: timedelta) -> bool:
    return bool(await timers.renew(ids, lease))


async def _fire_batch(timers: TimerStore, dispatch: Dispatch, due: list[TimerRow], now: datetime,
                      result: SweepResult) -> tuple[int, int]:
    leads = await timers.lead_clocks(t.lead_id for t in due if t.lead_id is not None)
    done: list[int] = []
    dropped: list[int] = []
    for timer in due:
        if not still_applies(timer, leads.get(timer.lead_id) if timer.lead_id is not None else None):
            dropped.append(timer.id)
            continue
        try:
            await dispatch(timer)
        except Exception as e:  # noqa: BLE001 - one failing action must not stop the sweep
            log.warning("scheduler.timer_action_failed", timer=timer.key, kind=timer.kind, error=repr(e)[:300])
            await timers.retry_later(timer, now, repr(e))
            result.failed += 1
            continue
        done.append(timer.id)
    fired = await timers.finish(done)
    if fired < len(done):
        log.warning("scheduler.timer_lease_lost", lost=len(done) - fired)
    await timers.drop(dropped)
    return len(done), len(dropped)
