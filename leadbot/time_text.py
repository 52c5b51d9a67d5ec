"""Time in words, for people: instants in the configured zone and the start-up statement of which
calendar is in force and what it means right now. The words are the catalogue's
(leadbot/i18n.py); the calendar arithmetic is leadbot.workcal's. Callers pass `now`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from leadbot.i18n import t
from leadbot.time_policy import stamp
from leadbot.workcal import WorkCalendar, calendar_of


def local_text(instant: datetime, calendar: Any, lang: str = "zh", *, now: datetime | None = None) -> str:
    """An instant as a person in the calendar's zone reads it: "周一 09:00" within a week either
    side of `now`, else with its date ("11月30日 周一 09:00"). Never "today": a card keeps its
    words for days, and "today" would turn false by the next morning."""
    cal = calendar_of(calendar)
    local = cal.local(instant)
    hhmm = local.strftime("%H:%M")
    weekday = t(f"weekday.{local.weekday()}", lang)
    if now is not None:
        today = cal.local_date(now)
        if today - timedelta(days=7) < local.date() < today + timedelta(days=7):
            return t("time.near", lang, weekday=weekday, hhmm=hhmm)
    return t("time.dated", lang, weekday=weekday, day=local.day, month=t(f"month.{local.month}", lang), hhmm=hhmm)


def date_text(day: date, lang: str = "zh") -> str:
    """A calendar day: "2026年12月3日" / "3 Dec 2026"."""
    return t("time.date", lang, year=day.year, month=t(f"month.{day.month}", lang), day=day.day)


def calendar_line(settings: Any, configured: bool, lang: str = "zh") -> str:
    """Which calendar is in force, in one line."""
    c = settings.calendar
    cal = calendar_of(c)
    where = t("cal.configured", lang, source=settings.source) if configured else t("cal.default", lang)
    teams = "".join(t("cal.team", lang, name=name, zone=c.for_team(name).timezone,
                      hours=c.for_team(name).working_hours) for name in c.teams)
    return t("cal.line", lang, zone=c.timezone, days=",".join(str(d) for d in c.working_days), hours=c.working_hours,
             holidays=t("cal.holidays", lang, n=len(cal.holidays)),
             extra=t("cal.extra_workdays", lang, n=len(cal.extra_workdays)), where=where, teams=teams)


def now_line(settings: Any, now: datetime, held: int = 0, lang: str = "zh") -> str:
    """What the calendar says right now: inside working hours, or what is held until when."""
    cal: WorkCalendar = calendar_of(settings.calendar)
    here = stamp(now, cal)
    if cal.is_working(now):
        return t("cal.now_inside", lang, now=here)
    opens = stamp(cal.next_working_instant(now), cal)
    if not settings.sla.working_time:
        return t("cal.now_round_the_clock", lang, now=here, opens=opens)
    return t("cal.now_held", lang, now=here, opens=opens, held=held)
