"""The first-touch SLA ladder, stage stagnation, silence and pool recycling as durable timers.

Ladder steps are counted from the assignment: remind at sla.first_touch_remind, escalate at
first_touch_escalate, reassign at first_touch_reassign, return to the pool at pool_return, in
working time from [calendar] when sla.working_time (else wall-clock time).

Keys (one row per step, idempotent, shared with the notification the step sends):
  ft:{lead}:{epoch}:{attempt}:{remind|escalate|reassign}   per owner in an assignment cycle
  ft:{lead}:{epoch}:pool_return                             once per cycle, survives reassigns
  stage:{lead}:{stage}:{entered}:{owner|manager}
  pool:{lead}:{pooled}:recycle
An epoch is one assignment cycle (from routing until claim, first contact or the pool); a
reassign inside the cycle bumps the attempt, so the new owner gets a fresh remind/escalate/
reassign while the cycle keeps its single pool_return deadline.

Pool recycling and stage limits count like the ladder: in the working time of the lead's team's
calendar when sla.working_time, else on the wall. A stage limit's whole days are working days
("10d": ten working days later at the same hour, 调休 workdays counted, holidays and weekends
not), its remainder working hours. Silence stays on the wall clock: a customer who has not been
heard from for three days has not, weekend or not (documented in config.example.toml).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Iterable, Mapping

from store.lead_status import CLOSED as CLOSED_STATUSES
from store.timers import LeadClock, TimerRow, TimerSpec, TimerStore
from leadbot.durations import parse_duration
from leadbot.settings import CalendarSettings, Settings
from leadbot.workcal import WorkCalendar
from scheduler.actions import (ESCALATE, LADDER_KINDS, OWNER_STEPS, POOL_RECYCLE, POOL_RETURN, REASSIGN, REMIND,
                               ROUTE_AT_WINDOW, STAGE_KINDS, STAGE_MANAGER, STAGE_OWNER)

# The manager hears about a stuck stage this much later than the owner (a fraction of the limit).
MANAGER_AFTER = 0.5

_STEPS = ((REMIND, "remind", "first_touch_remind"), (ESCALATE, "escalate", "first_touch_escalate"),
          (REASSIGN, "reassign", "first_touch_reassign"), (POOL_RETURN, "pool_return", "pool_return"))


@lru_cache(maxsize=8)
def work_calendar(calendar: CalendarSettings) -> WorkCalendar:
    return WorkCalendar.from_settings(calendar)


def sla_add(start: datetime, delta: timedelta, settings: Settings) -> datetime:
    """start + delta, in working time when sla.working_time; always an aware UTC instant."""
    if start.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one")
    if settings.sla.working_time:
        return work_calendar(settings.calendar).add(start, delta)
    return start.astimezone(timezone.utc) + delta


def sla_elapsed(a: datetime, b: datetime, settings: Settings) -> timedelta:
    if settings.sla.working_time:
        return work_calendar(settings.calendar).between(a, b)
    return b - a


def working_limit(limit: timedelta, settings: Settings) -> timedelta:
    """A stage limit as the working time sla_add counts: its whole days as working days (one
    day = the calendar's working hours of a day), the rest as it is. On the wall: unchanged."""
    if not settings.sla.working_time:
        return limit
    return limit.days * work_calendar(settings.calendar).day_length + (limit - timedelta(days=limit.days))


def epoch_of(assigned_at: datetime) -> str:
    return assigned_at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S")


# ---- first touch -----------------------------------------------------------------------------

def plan_first_touch(lead_id: int, assigned_at: datetime, settings: Settings) -> list[tuple[str, datetime]]:
    """[(kind, due_at)] of the ladder, in order: remind, escalate, reassign, pool_return."""
    plan = [(kind, sla_add(assigned_at, parse_duration(getattr(settings.sla, key)), settings))
            for kind, _, key in _STEPS]
    # Misconfigured ladders (escalate before remind) still fire in ladder order.
    for i in range(1, len(plan)):
        if plan[i][1] < plan[i - 1][1]:
            plan[i] = (plan[i][0], plan[i - 1][1])
    return plan


def ladder_specs(lead_id: int, assigned_at: datetime, settings: Settings, *, owner_id: int | None = None,
                 epoch: str | None = None, attempt: int = 0) -> list[TimerSpec]:
    epoch = epoch or epoch_of(assigned_at)
    specs = []
    # Each step keeps its own name (and so its own key), even where two share a kind.
    for (_, name, _), (kind, due) in zip(_STEPS, plan_first_touch(lead_id, assigned_at, settings)):
        key = (f"ft:{lead_id}:{epoch}:pool_return" if kind == POOL_RETURN
               else f"ft:{lead_id}:{epoch}:{attempt}:{name}")
        payload = {"step": name, "epoch": epoch, "attempt": attempt, "owner_id": owner_id,
                   "since": assigned_at.astimezone(timezone.utc).isoformat()}
        specs.append(TimerSpec(key, kind, lead_id, due, payload))
    return specs


async def start_ladder(timers: TimerStore, lead_id: int, assigned_at: datetime, settings: Settings, *,
                       owner_id: int | None = None, epoch: str | None = None, attempt: int = 0) -> list[TimerSpec]:
    """Schedules the ladder for a (re)assignment. Idempotent: a retried call adds nothing. For a
    reassign, pass the epoch and attempt + 1 from the firing payload: the earlier owner's
    remaining steps are cancelled, the cycle's pool_return stays."""
    specs, _ = await schedule_ladder(timers, lead_id, assigned_at, settings, owner_id=owner_id, epoch=epoch,
                                     attempt=attempt)
    return specs


async def schedule_ladder(timers: TimerStore, lead_id: int, assigned_at: datetime, settings: Settings, *,
                          owner_id: int | None = None, epoch: str | None = None,
                          attempt: int = 0) -> tuple[list[TimerSpec], bool]:
    """start_ladder, also telling whether every step was written by this call (False for a
    retried call: the steps stored earlier count, not these)."""
    if attempt > 0:
        await timers.cancel(lead_id, OWNER_STEPS)
    specs = ladder_specs(lead_id, assigned_at, settings, owner_id=owner_id, epoch=epoch, attempt=attempt)
    written = await timers.schedule_many(specs)
    return specs, written == len(specs)


def card_deadline(pending: Iterable[tuple[str, datetime]], missed: Iterable[datetime] = ()) -> datetime | None:
    """What a lead's card counts down to, from its pending timers (kind, due): the next
    escalation to the manager, else the next ladder step. `missed`: escalations of the current
    owner's ladder that already fired: with none pending, the card says the first touch is
    overdue since then (the manager was told at that moment), not a fresh countdown to the
    reassignment that follows."""
    steps = [(kind, due) for kind, due in pending if kind in LADDER_KINDS]
    escalations = [due for kind, due in steps if kind == ESCALATE]
    if escalations:
        return min(escalations)
    missed = list(missed)
    if missed and steps:
        return max(missed)
    return min((due for _, due in steps), default=None)


async def cancel_ladder(timers: TimerStore, lead_id: int) -> int:
    """On claim, first contact or a stage advance: the rest of the ladder (and any pool recycle)
    never fires."""
    return await timers.cancel(lead_id, (*LADDER_KINDS, POOL_RECYCLE))


# ---- stagnation and silence ------------------------------------------------------------------

def stage_limit(stage: str, settings: Settings) -> timedelta | None:
    """The stage's limit, or the default for stages not listed; None when turned off ("0")."""
    raw = settings.sla.stage_limits.get(stage, settings.sla.stage_limit_default)
    limit = parse_duration(raw)
    return limit if limit > timedelta(0) else None


def plan_stagnation(lead_id: int, stage: str, entered_at: datetime, settings: Settings
                    ) -> list[tuple[str, datetime]]:
    limit = stage_limit(stage, settings)
    if limit is None or not stage:
        return []
    counted = working_limit(limit, settings)
    return [(STAGE_OWNER, sla_add(entered_at, counted, settings)),
            (STAGE_MANAGER, sla_add(entered_at, counted * (1 + MANAGER_AFTER), settings))]


async def start_stage_watch(timers: TimerStore, lead_id: int, stage: str, entered_at: datetime,
                            settings: Settings) -> list[TimerSpec]:
    """On entering a stage (and at lead creation): replaces the previous stage's alerts."""
    await timers.cancel(lead_id, STAGE_KINDS)
    stamp = epoch_of(entered_at)
    limit = stage_limit(stage, settings)
    specs = [TimerSpec(f"stage:{lead_id}:{stage}:{stamp}:{'owner' if kind == STAGE_OWNER else 'manager'}",
                       kind, lead_id, due,
                       {"stage": stage, "entered_at": entered_at.astimezone(timezone.utc).isoformat(),
                        "level": "owner" if kind == STAGE_OWNER else "manager",
                        "limit_seconds": limit.total_seconds() if limit else 0})
             for kind, due in plan_stagnation(lead_id, stage, entered_at, settings)]
    await timers.schedule_many(specs)
    return specs


def is_silent(lead: Any, now: datetime, settings: Settings) -> bool:
    """True when an open lead has had no activity for sla.silence_flag: its card shows it red.
    Takes any object with status and the lead times (store.dto.Lead, LeadClock)."""
    if getattr(lead, "status", "") in CLOSED_STATUSES:
        return False
    last = (getattr(lead, "last_activity_at", None) or getattr(lead, "stage_entered_at", None)
            or getattr(lead, "claimed_at", None) or getattr(lead, "assigned_at", None)
            or getattr(lead, "created_at", None))
    if last is None:
        return False
    return now - last >= parse_duration(settings.sla.silence_flag)


# ---- pool ------------------------------------------------------------------------------------

async def start_pool_recycle(timers: TimerStore, lead_id: int, pooled_at: datetime,
                             settings: Settings) -> TimerSpec | None:
    """When a lead lands in the pool: if nobody claims it within sla.pool_recycle it is routed
    again or escalated (actions.recycle_from_pool)."""
    delay = parse_duration(settings.sla.pool_recycle)
    if delay <= timedelta(0):
        return None
    spec = TimerSpec(f"pool:{lead_id}:{epoch_of(pooled_at)}:recycle", POOL_RECYCLE, lead_id,
                     sla_add(pooled_at, delay, settings),
                     {"pooled_at": pooled_at.astimezone(timezone.utc).isoformat()})
    await timers.schedule_many([spec])
    return spec


async def route_at_window(timers: TimerStore, lead_id: int, until: datetime) -> TimerSpec:
    """A lead waits for the next working window (nobody on duty): routed when it opens."""
    spec = TimerSpec(f"window:{lead_id}:{epoch_of(until)}", ROUTE_AT_WINDOW, lead_id, until,
                     {"until": until.astimezone(timezone.utc).isoformat()})
    await timers.schedule_many([spec])
    return spec


# ---- does a claimed timer still apply? -------------------------------------------------------

def still_applies(timer: TimerRow, lead: LeadClock | None) -> bool:
    """A guard against a missed cancel: the lead moved on since the timer was planned, so the
    timer is dropped instead of nagging someone about a lead they already handled."""
    if timer.lead_id is None:
        return True
    if lead is None or lead.status in CLOSED_STATUSES:
        return False
    p = timer.payload
    if timer.kind in LADDER_KINDS:
        since = _parse(p.get("since"))
        if _after(lead.claimed_at, since) or _after(lead.first_contact_at, since):
            return False
        if timer.kind == POOL_RETURN:  # the cycle's deadline, whoever holds the lead by then
            return lead.owner_id is not None
        owner = p.get("owner_id")
        return owner is None or lead.owner_id == owner
    if timer.kind == POOL_RECYCLE:
        since = _parse(p.get("pooled_at"))
        return lead.owner_id is None and not _after(lead.claimed_at, since)
    if timer.kind == ROUTE_AT_WINDOW:
        return lead.owner_id is None and lead.status == "waiting"
    if timer.kind in STAGE_KINDS:
        if lead.stage != p.get("stage"):
            return False
        entered = _parse(p.get("entered_at"))
        return (entered is None or lead.stage_entered_at is None
                or abs((lead.stage_entered_at - entered).total_seconds()) < 1)
    return True


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(str(value))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _after(t: datetime | None, since: datetime | None) -> bool:
    return t is not None and (since is None or t >= since)


def payload_of(timer: TimerRow) -> Mapping[str, Any]:
    """The payload an action sees: internal bookkeeping entries removed."""
    return {k: v for k, v in timer.payload.items() if not k.startswith("_")}
