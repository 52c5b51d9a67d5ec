"""Quiet hours from [calendar]: what may wait until the next working window, and what may not.

The working-time arithmetic is leadbot.workcal's (the same calendar the SLA timers count in),
so "working hours" means the same thing for a reminder and for the message that carries it.

One meaning of time (config.example.toml, [sla] working_time and [calendar]):
- A message that answers a person's own action (a command reply, a tap or H5 result, the
  friend-add match for the rep who just added the friend) is never held: the person is awake,
  they just did something. Such outbox rows carry ``payload["reply"] = True``.
- With ``[sla] working_time = true`` (the default) SLA clocks stop outside working hours, so
  lead cards and reminders wait for the next working window too (held, not dropped), and
  escalations break through only when ``quiet_hours_break_for_escalations``.
- With ``working_time = false`` the SLA runs around the clock, so nothing is held: a card the
  rep never saw cannot be escalated to a manager about. That is the whole effect, stated once
  at start-up (``time_policy_line``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from leadbot.i18n import t
from leadbot.settings import CalendarSettings, Settings
from leadbot.workcal import WorkCalendar, calendar_of

# The outbox payload flag of a message that answers its recipient's own action.
REPLY = "reply"
# The outbox payload flag of a lead card for the on-duty rep (值班): they are on duty, so it is
# not held either.
ON_DUTY = "on_duty"
# The outbox payload entry naming the recipient's team when it keeps a calendar of its own.
CALENDAR_TEAM = "calendar_team"
# The last_error an outbox row carries while it is held (metrics count these).
HELD_REASON = "quiet hours"


def quiet_until(now: datetime, cal: CalendarSettings | WorkCalendar) -> datetime | None:
    """None inside working hours; else the start of the next working window (UTC)."""
    work = calendar_of(cal)
    nxt = work.next_working_instant(now)
    return None if nxt <= now else nxt


def quiet_hours_in_force(settings: Settings) -> bool:
    """Quiet hours hold messages only while SLA clocks stop outside working hours."""
    return settings.sla.working_time


def hold_until(now: datetime, settings: Settings, calendar: WorkCalendar, *, urgent: bool,
               payload: Mapping[str, Any]) -> datetime | None:
    """When a person-facing message may go out: None = now, else the instant it is held until."""
    if payload.get(REPLY) or payload.get(ON_DUTY) or not quiet_hours_in_force(settings):
        return None
    if urgent and settings.calendar.quiet_hours_break_for_escalations:
        return None
    team = payload.get(CALENDAR_TEAM)
    return quiet_until(now, calendar_of(settings.calendar, team) if team else calendar)


def time_policy_line(settings: Settings, lang: str = "zh") -> str:
    """The one line `leadbot serve` prints about how [sla] working_time and quiet hours combine."""
    if settings.sla.working_time:
        esc = ("cal.escalations_break" if settings.calendar.quiet_hours_break_for_escalations
               else "cal.escalations_wait")
        return t("cal.policy_working", lang, escalations=t(esc, lang))
    return t("cal.policy_round_the_clock", lang)
