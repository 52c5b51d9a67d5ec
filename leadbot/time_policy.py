"""Instants for people, in the configured zone, in a form that needs no words (lists, logs, the
CLI's history lines). Sentences about time are worded from the catalogue in leadbot/time_text.py.

Pure (standard library and leadbot.workcal): callers pass the instant and the calendar.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leadbot.workcal import calendar_of


def stamp(instant: datetime, calendar: Any) -> str:
    """A full timestamp in the calendar's zone for lists and logs read by people (CLI, history)."""
    cal = calendar_of(calendar)
    return cal.local(instant).strftime("%Y-%m-%d %H:%M ") + str(cal.tz.key)
