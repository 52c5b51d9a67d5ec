"""Working time from [calendar], with a rep's own hours (pure)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from leadbot.workcal import WorkCalendar, parse_hours
from tests.conftest import make_settings

SH = ZoneInfo("Asia/Shanghai")


def cal(**kw) -> WorkCalendar:
    return WorkCalendar.from_settings(make_settings(calendar=kw).calendar)


def at(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


def test_default_calendar_weekdays_nine_to_six():
    c = cal()
    assert c.on_clock(at(2026, 11, 23, 10, 0))  # Monday
    assert c.on_clock(at(2026, 11, 23, 9, 0))
    assert not c.on_clock(at(2026, 11, 23, 18, 0))  # end exclusive
    assert not c.on_clock(at(2026, 11, 23, 8, 59))
    assert not c.on_clock(at(2026, 11, 28, 10, 0))  # Saturday


def test_holidays_and_extra_workdays():
    c = cal(holidays=["2026-10-01"], extra_workdays=["2026-09-27"])  # Thu holiday, Sun made workday
    assert not c.on_clock(at(2026, 10, 1, 10, 0))
    assert c.on_clock(at(2026, 9, 27, 10, 0))


def test_rep_hours_override_and_wrap_midnight():
    c = cal()
    assert c.on_clock(at(2026, 11, 23, 20, 0), "18:00-23:00")
    assert not c.on_clock(at(2026, 11, 23, 10, 0), "18:00-23:00")
    assert c.on_clock(at(2026, 11, 23, 23, 30), "22:00-06:00")
    assert c.on_clock(at(2026, 11, 24, 5, 0), "22:00-06:00")  # started Monday night
    assert not c.on_clock(at(2026, 11, 23, 5, 0), "22:00-06:00")  # Sunday night shift: not a workday
    assert c.on_clock(at(2026, 11, 23, 14, 0), "09:00-12:00,13:30-18:00")
    assert not c.on_clock(at(2026, 11, 23, 13, 0), "09:00-12:00,13:30-18:00")
    assert c.on_clock(at(2026, 11, 23, 10, 0), "garbage")  # not understood: calendar hours


def test_parse_hours():
    assert parse_hours("bad") is None and parse_hours("09:00-09:00") is None
    assert len(parse_hours("09:00-12:00，13:00-18:00")) == 2


def test_utc_input_is_converted_to_calendar_zone():
    c = cal(timezone="Asia/Shanghai")
    assert c.on_clock(datetime(2026, 11, 23, 2, 0, tzinfo=ZoneInfo("UTC")))  # 10:00 Shanghai
    assert c.midnight(datetime(2026, 11, 23, 17, 0, tzinfo=ZoneInfo("UTC"))) == at(2026, 11, 24, 0, 0)


def test_rep_hours_ending_at_midnight():
    c = cal()
    assert c.on_clock(at(2026, 11, 23, 23, 59), "18:00-24:00")
    assert not c.on_clock(at(2026, 11, 24, 0, 30), "18:00-24:00")
