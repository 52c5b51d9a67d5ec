"""Quiet hours from [calendar]: when a non-urgent message may go out.

The working-time arithmetic is leadbot.workcal's (the same calendar the SLA timers count in),
so "working hours" means the same thing for a reminder and for the message that carries it.
"""

from __future__ import annotations

from datetime import datetime

from leadbot.settings import CalendarSettings
from leadbot.workcal import WorkCalendar


def quiet_until(now: datetime, cal: CalendarSettings | WorkCalendar) -> datetime | None:
    """None inside working hours; else the start of the next working window (UTC)."""
    work = cal if isinstance(cal, WorkCalendar) else WorkCalendar.from_settings(cal)
    nxt = work.next_working_instant(now)
    return None if nxt <= now else nxt
