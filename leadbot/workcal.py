"""Working-time arithmetic over the [calendar] section: working hours on working days, in the
calendar's own timezone, skipping weekends and public holidays and honouring 调休 make-up
workdays (a Saturday or Sunday that is worked to pay for a long holiday).

Pure and deterministic: standard library and zoneinfo only, no clock, no host timezone. Every
instant in and out is timezone-aware; results are in UTC, like every datetime leadbot keeps.
The host's TZ never matters because each day's working window is built from the calendar's
ZoneInfo and compared as aware instants.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable
from zoneinfo import ZoneInfo

# A calendar with no working day at all would make add_working loop forever; give up after this.
_MAX_DAYS = 3 * 366


class CalendarError(ValueError):
    """A [calendar] value that cannot be used; str() names the key."""


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    tz: ZoneInfo
    day_start: time
    day_end: time  # time(0) with end_of_day=True stands for 24:00
    working_days: frozenset[int]  # ISO weekdays, 1 = Monday
    holidays: frozenset[date]
    extra_workdays: frozenset[date]
    end_of_day: bool = False

    @classmethod
    def from_settings(cls, cal: Any) -> "WorkCalendar":
        """From a leadbot.settings.CalendarSettings (duck-typed so the kernel stays flat)."""
        start_text, _, end_text = str(cal.working_hours).partition("-")
        start, _ = _hhmm(start_text, "working_hours")
        end, end_of_day = _hhmm(end_text, "working_hours")
        if not end_of_day and end <= start:
            raise CalendarError("config: [calendar] working_hours: the end must be after the start")
        return cls(tz=ZoneInfo(cal.timezone), day_start=start, day_end=end,
                   working_days=frozenset(int(d) for d in cal.working_days),
                   holidays=frozenset(_dates(cal.holidays, "holidays")),
                   extra_workdays=frozenset(_dates(cal.extra_workdays, "extra_workdays")),
                   end_of_day=end_of_day)

    # ---- days --------------------------------------------------------------------------------

    def is_workday(self, day: date) -> bool:
        if day in self.extra_workdays:
            return True
        if day in self.holidays:
            return False
        return day.isoweekday() in self.working_days

    def window(self, day: date) -> tuple[datetime, datetime]:
        """The working window of a local calendar day as UTC instants (whether or not it is worked)."""
        start = datetime.combine(day, self.day_start, self.tz)
        if self.end_of_day:
            end = datetime.combine(day + timedelta(days=1), time(0), self.tz)
        else:
            end = datetime.combine(day, self.day_end, self.tz)
        return start.astimezone(timezone.utc), end.astimezone(timezone.utc)

    def local_date(self, instant: datetime) -> date:
        return _aware(instant).astimezone(self.tz).date()

    def local(self, instant: datetime) -> datetime:
        """The instant on the calendar's wall clock (what a person is shown)."""
        return _aware(instant).astimezone(self.tz)

    def midnight(self, instant: datetime) -> datetime:
        """Start of the local calendar day containing ``instant`` (daily caps reset then)."""
        return datetime.combine(self.local_date(instant), time(0), self.tz)

    @property
    def day_length(self) -> timedelta:
        """The working time of one working day (the hours are the same every working day)."""
        end = timedelta(days=1) if self.end_of_day else timedelta(hours=self.day_end.hour, minutes=self.day_end.minute)
        return end - timedelta(hours=self.day_start.hour, minutes=self.day_start.minute)

    # ---- instants ----------------------------------------------------------------------------

    def is_working(self, instant: datetime) -> bool:
        instant = _aware(instant).astimezone(timezone.utc)
        day = self.local_date(instant)
        if not self.is_workday(day):
            return False
        start, end = self.window(day)
        return start <= instant < end

    def on_clock(self, instant: datetime, rep_hours: str = "") -> bool:
        """Is a rep on the clock? A rep's own working_hours ("18:00-23:00", several windows, or one
        wrapping midnight, which belongs to the day it starts on) override the calendar's hours,
        never its days, holidays or 调休. Hours that are not understood fall back to the calendar's."""
        hours = parse_hours(rep_hours) if rep_hours else None
        if not hours:
            return self.is_working(instant)
        local = self.local(instant)
        t = local.time().replace(tzinfo=None)
        today, yesterday = local.date(), local.date() - timedelta(days=1)
        for start, end, to_midnight in hours:
            if to_midnight or start < end:
                if self.is_workday(today) and start <= t and (to_midnight or t < end):
                    return True
            else:
                if self.is_workday(today) and t >= start:
                    return True
                if self.is_workday(yesterday) and t < end:
                    return True
        return False

    def next_working_instant(self, instant: datetime) -> datetime:
        """The instant itself when inside working time, else the start of the next working window."""
        instant = _aware(instant).astimezone(timezone.utc)
        day = self.local_date(instant)
        for _ in range(_MAX_DAYS):
            if self.is_workday(day):
                start, end = self.window(day)
                if instant < end:
                    return max(instant, start)
            day += timedelta(days=1)
        raise CalendarError("config: [calendar] working_days: no working day in three years")

    def add(self, start: datetime, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            return self._subtract(start, -delta)
        cursor = _aware(start).astimezone(timezone.utc)
        if delta == timedelta(0):
            return cursor
        remaining = delta
        day = self.local_date(cursor)
        for _ in range(_MAX_DAYS + int(delta.total_seconds() // 3600) + 1):
            if self.is_workday(day):
                w_start, w_end = self.window(day)
                begin = max(cursor, w_start)
                if begin < w_end:
                    available = w_end - begin
                    if remaining <= available:
                        return begin + remaining
                    remaining -= available
            day += timedelta(days=1)
        raise CalendarError("config: [calendar] working_days: no working day in three years")

    def _subtract(self, end: datetime, delta: timedelta) -> datetime:
        """The earliest instant from which `delta` of working time reaches `end` (add's inverse)."""
        cursor = _aware(end).astimezone(timezone.utc)
        remaining = delta
        day = self.local_date(cursor)
        for _ in range(_MAX_DAYS + int(delta.total_seconds() // 3600) + 1):
            if self.is_workday(day):
                w_start, w_end = self.window(day)
                finish = min(cursor, w_end)
                if finish > w_start:
                    available = finish - w_start
                    if remaining <= available:
                        return finish - remaining
                    remaining -= available
            day -= timedelta(days=1)
        raise CalendarError("config: [calendar] working_days: no working day in three years")

    def between(self, a: datetime, b: datetime) -> timedelta:
        """Working time from a to b; negative when b is before a."""
        a = _aware(a).astimezone(timezone.utc)
        b = _aware(b).astimezone(timezone.utc)
        if b < a:
            return -self.between(b, a)
        total = timedelta(0)
        day = self.local_date(a)
        last = self.local_date(b)
        while day <= last:
            if self.is_workday(day):
                w_start, w_end = self.window(day)
                lo, hi = max(a, w_start), min(b, w_end)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total


def calendar_of(calendar: Any, team: str = "") -> WorkCalendar:
    """The WorkCalendar of a WorkCalendar or [calendar] settings; with `team`, that team's own
    calendar ([calendar.teams."NAME"]) where it has one."""
    if isinstance(calendar, WorkCalendar):
        return calendar
    if team and hasattr(calendar, "for_team"):
        calendar = calendar.for_team(team)
    return _built(calendar)


@lru_cache(maxsize=64)
def _built(calendar: Any) -> WorkCalendar:
    return WorkCalendar.from_settings(calendar)


def add_working(start: datetime, delta: timedelta, calendar: Any) -> datetime:
    """`start` plus `delta` of working time (a negative delta goes back). A start outside working
    hours counts from the next working window, so Friday 20:00 + 2 min is Monday 09:02."""
    return calendar_of(calendar).add(start, delta)


def working_between(a: datetime, b: datetime, calendar: Any) -> timedelta:
    """How much working time lies between two instants."""
    return calendar_of(calendar).between(a, b)


@lru_cache(maxsize=256)
def parse_hours(spec: str) -> tuple[tuple[time, time, bool], ...] | None:
    """A rep's hours: "09:00-18:00" or "09:00-12:00,13:30-18:00"; a window may wrap midnight
    ("22:00-06:00") or end at 24:00. (start, end, ends_at_midnight) per window; None when the
    text is not understood (the caller then uses the calendar's hours)."""
    windows = []
    for part in spec.replace("，", ",").split(","):
        if not part.strip():
            continue
        start_text, sep, end_text = part.partition("-")
        try:
            start, start_24 = _hhmm(start_text, "working_hours")
            end, end_24 = _hhmm(end_text, "working_hours")
        except CalendarError:
            return None
        if not sep or start_24 or (start == end and not end_24):
            return None
        windows.append((start, end, end_24))
    return tuple(windows) or None


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("naive datetime: working-time arithmetic needs an aware one")
    return instant


def _hhmm(text: str, key: str) -> tuple[time, bool]:
    hh, sep, mm = text.strip().partition(":")
    if not (sep and hh.isdigit() and mm.isdigit()):
        raise CalendarError(f'config: [calendar] {key}: must look like "09:00-18:00"')
    h, m = int(hh), int(mm)
    if h == 24 and m == 0:
        return time(0), True
    if not (0 <= h < 24 and 0 <= m < 60):
        raise CalendarError(f'config: [calendar] {key}: must look like "09:00-18:00"')
    return time(h, m), False


def _dates(values: Iterable[Any], key: str) -> Iterable[date]:
    """"2026-10-01" or an inclusive range "2026-10-01..2026-10-08" (国庆 is easier to write so)."""
    for value in values:
        if isinstance(value, date):
            yield value
            continue
        first, sep, last = str(value).strip().partition("..")
        try:
            lo = date.fromisoformat(first.strip())
            hi = date.fromisoformat(last.strip()) if sep else lo
        except ValueError:
            raise CalendarError(f"config: [calendar] {key}: {value!r} is not a date like 2026-10-01 "
                                "or a range like 2026-10-01..2026-10-08") from None
        if hi < lo:
            raise CalendarError(f"config: [calendar] {key}: range {value!r} ends before it starts")
        while lo <= hi:
            yield lo
            lo += timedelta(days=1)
