"""Working time from ``[calendar]``: is a rep on the clock at a given instant? Pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from leadbot.settings import CalendarSettings


def _hhmm(text: str) -> time | None:
    hh, sep, mm = text.strip().partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit():
        return None
    h, m = int(hh), int(mm)
    if h == 24 and m == 0:
        return time.max
    if not (0 <= h < 24 and 0 <= m < 60):
        return None
    return time(h, m)


@lru_cache(maxsize=256)
def parse_hours(spec: str) -> tuple[tuple[time, time], ...] | None:
    """"09:00-18:00" or "09:00-12:00,13:30-18:00"; a window may wrap midnight ("22:00-06:00").
    None when the text is not understood (the caller then falls back to the calendar)."""
    windows = []
    for part in spec.replace("，", ",").split(","):
        if not part.strip():
            continue
        start, sep, end = part.partition("-")
        a, b = _hhmm(start), _hhmm(end)
        if not sep or a is None or b is None or a == b:
            return None
        windows.append((a, b))
    return tuple(windows) or None


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    tz: ZoneInfo
    hours: tuple[tuple[time, time], ...]
    working_days: frozenset[int]
    holidays: frozenset[date]
    extra_workdays: frozenset[date]

    @classmethod
    def from_settings(cls, cal: CalendarSettings) -> "WorkCalendar":
        return cls(tz=cal.tz, hours=parse_hours(cal.working_hours) or ((time(9), time(18)),),
                   working_days=frozenset(cal.working_days),
                   holidays=frozenset(date.fromisoformat(d) for d in cal.holidays),
                   extra_workdays=frozenset(date.fromisoformat(d) for d in cal.extra_workdays))

    def is_workday(self, day: date) -> bool:
        if day in self.extra_workdays:  # 调休: a weekend made a working day
            return True
        if day in self.holidays:
            return False
        return day.isoweekday() in self.working_days

    def local(self, now: datetime) -> datetime:
        return now.astimezone(self.tz)

    def day_start(self, now: datetime) -> datetime:
        """Start of the local calendar day containing ``now`` (daily caps reset then)."""
        local = self.local(now)
        return datetime.combine(local.date(), time(0), tzinfo=self.tz)

    def on_clock(self, now: datetime, rep_hours: str = "") -> bool:
        """A rep's own working_hours override the calendar's hours, not its days or holidays.
        A window that wraps midnight belongs to the day it starts on."""
        hours = (parse_hours(rep_hours) if rep_hours else None) or self.hours
        local = self.local(now)
        t = local.time().replace(tzinfo=None)
        today, yesterday = local.date(), local.date() - timedelta(days=1)
        for start, end in hours:
            if start < end:
                if self.is_workday(today) and start <= t < end:
                    return True
            else:
                if self.is_workday(today) and t >= start:
                    return True
                if self.is_workday(yesterday) and t < end:
                    return True
        return False
