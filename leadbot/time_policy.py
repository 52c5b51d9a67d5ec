"""What leadbot says about time: instants in the configured zone for people, and the start-up
statement of which calendar is in force and what it means right now.

Pure (standard library and leadbot.workcal): callers pass `now` and the settings.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from leadbot.workcal import WorkCalendar, calendar_of

_WEEKDAYS = {"zh": "一二三四五六日", "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")}


def local_text(instant: datetime, calendar: Any, lang: str = "zh", *, now: datetime | None = None) -> str:
    """An instant as a person in the calendar's zone reads it: "周一 09:00" within a week either
    side of `now`, else with its date ("12月7日 周一 09:00"). Never "today": a card keeps its
    words for days, and "today" would turn false by the next morning."""
    cal = calendar_of(calendar)
    local = cal.local(instant)
    hhmm = local.strftime("%H:%M")
    zh = lang == "zh"
    day = f"周{_WEEKDAYS['zh'][local.weekday()]}" if zh else _WEEKDAYS["en"][local.weekday()]
    if now is not None:
        today = cal.local_date(now)
        if today - timedelta(days=7) < local.date() < today + timedelta(days=7):
            return f"{day} {hhmm}"
    if zh:
        return f"{local.month}月{local.day}日 {day} {hhmm}"
    return f"{day} {local.day} {local.strftime('%b')} {hhmm}"


def stamp(instant: datetime, calendar: Any) -> str:
    """A full timestamp in the calendar's zone for lists and logs read by people (CLI, history)."""
    cal = calendar_of(calendar)
    return cal.local(instant).strftime("%Y-%m-%d %H:%M ") + str(cal.tz.key)


def calendar_line(settings: Any, configured: bool) -> str:
    """Which calendar is in force, in one line."""
    c = settings.calendar
    days = ",".join(str(d) for d in c.working_days)
    cal = calendar_of(c)
    where = "[calendar] in " + settings.source if configured else "built-in default (no [calendar] in the config)"
    teams = "".join(f"; team {name}: {c.for_team(name).timezone} {c.for_team(name).working_hours}"
                    for name in c.teams)
    return (f"calendar: {c.timezone}, working days {days} (1 = Monday), {c.working_hours}, "
            f"{len(cal.holidays)} holiday(s), {len(cal.extra_workdays)} 调休 workday(s): {where}{teams}")


def now_line(settings: Any, now: datetime, held: int = 0) -> str:
    """What the calendar says right now: inside working hours, or what is held until when."""
    cal: WorkCalendar = calendar_of(settings.calendar)
    here = stamp(now, cal)
    if cal.is_working(now):
        return f"now {here}: inside working hours"
    opens = cal.next_working_instant(now)
    opens_text = stamp(opens, cal)
    if not settings.sla.working_time:
        return (f"now {here}: outside working hours (next window {opens_text}); [sla] working_time = false, "
                "so nothing is held")
    return (f"now {here}: outside working hours: lead cards and reminders are held until {opens_text}"
            f" ({held} held now); leads without an on-duty rep are assigned then")
