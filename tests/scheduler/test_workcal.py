"""Working-time arithmetic: weekends, holidays, 调休 make-up days, starts outside hours, and a
host clock in another timezone that must change nothing."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from leadbot.settings import CalendarSettings, ConfigError
from leadbot.workcal import WorkCalendar, add_working, working_between

SH = ZoneInfo("Asia/Shanghai")
GOLDEN_WEEK = CalendarSettings(holidays=("2026-10-01..2026-10-07",),
                               extra_workdays=("2026-09-27", "2026-10-10"))


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def test_inside_hours_is_plain_addition() -> None:
    assert add_working(sh(2026, 11, 23, 10, 0), timedelta(minutes=2), CalendarSettings()) == sh(2026, 11, 23, 10, 2)


def test_result_is_utc_and_aware() -> None:
    out = add_working(sh(2026, 11, 23, 10, 0), timedelta(minutes=2), CalendarSettings())
    assert out.tzinfo is not None and out.utcoffset() == timedelta(0)


def test_friday_evening_rolls_over_the_weekend() -> None:
    cal = CalendarSettings()
    assert add_working(sh(2026, 11, 20, 17, 59), timedelta(minutes=2), cal) == sh(2026, 11, 23, 9, 1)
    assert add_working(sh(2026, 11, 20, 20, 0), timedelta(minutes=2), cal) == sh(2026, 11, 23, 9, 2)
    assert add_working(sh(2026, 11, 21, 11, 0), timedelta(hours=1), cal) == sh(2026, 11, 23, 10, 0)


def test_start_before_and_after_hours() -> None:
    cal = CalendarSettings()
    assert add_working(sh(2026, 11, 23, 7, 0), timedelta(minutes=30), cal) == sh(2026, 11, 23, 9, 30)
    assert add_working(sh(2026, 11, 23, 18, 0), timedelta(minutes=30), cal) == sh(2026, 11, 24, 9, 30)
    # Ending exactly at closing time stays on that day.
    assert add_working(sh(2026, 11, 23, 17, 0), timedelta(hours=1), cal) == sh(2026, 11, 23, 18, 0)


def test_24_hours_of_working_time_is_several_days() -> None:
    # 9 working hours a day: Mon 10:00 + 24h = Mon 8h + Tue 9h + Wed 7h -> Wed 16:00.
    assert add_working(sh(2026, 11, 23, 10, 0), timedelta(hours=24), CalendarSettings()) == sh(2026, 11, 25, 16, 0)


def test_holiday_range_is_skipped() -> None:
    # Wed 30 Sep 17:00 + 2h: 1h that day, then 1-7 Oct off, Thu 8 Oct 10:00.
    assert add_working(sh(2026, 9, 30, 17, 0), timedelta(hours=2), GOLDEN_WEEK) == sh(2026, 10, 8, 10, 0)
    assert working_between(sh(2026, 9, 30, 17, 0), sh(2026, 10, 8, 10, 0), GOLDEN_WEEK) == timedelta(hours=2)


def test_tiaoxiu_makeup_weekend_days_are_worked() -> None:
    # Sat 26 Sep is off, Sun 27 Sep is a make-up workday (调休).
    assert add_working(sh(2026, 9, 26, 12, 0), timedelta(hours=1), GOLDEN_WEEK) == sh(2026, 9, 27, 10, 0)
    # Fri 9 Oct 17:30 + 1h: Sat 10 Oct is worked too.
    assert add_working(sh(2026, 10, 9, 17, 30), timedelta(hours=1), GOLDEN_WEEK) == sh(2026, 10, 10, 9, 30)
    cal = WorkCalendar.from_settings(GOLDEN_WEEK)
    assert cal.is_workday(datetime(2026, 10, 10).date())
    assert not cal.is_workday(datetime(2026, 10, 5).date())
    assert not cal.is_workday(datetime(2026, 10, 11).date())  # ordinary Sunday


def test_working_between_weekend_and_holiday() -> None:
    cal = CalendarSettings(holidays=("2026-11-23",))  # the Monday is a holiday
    # Fri 17:00 -> Tue 10:00: Fri 1h + Tue 1h.
    assert working_between(sh(2026, 11, 20, 17, 0), sh(2026, 11, 24, 10, 0), cal) == timedelta(hours=2)
    assert working_between(sh(2026, 11, 24, 10, 0), sh(2026, 11, 20, 17, 0), cal) == -timedelta(hours=2)
    assert working_between(sh(2026, 11, 21, 10, 0), sh(2026, 11, 22, 10, 0), cal) == timedelta(0)


def test_negative_delta_goes_back_in_working_time() -> None:
    assert add_working(sh(2026, 11, 23, 9, 2), -timedelta(minutes=4), CalendarSettings()) == sh(2026, 11, 20, 17, 58)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        add_working(datetime(2026, 11, 23, 10, 0), timedelta(minutes=1), CalendarSettings())
    with pytest.raises(ValueError):
        working_between(datetime(2026, 11, 23, 10, 0), sh(2026, 11, 23, 11, 0), CalendarSettings())


def test_input_timezone_does_not_matter() -> None:
    start = sh(2026, 11, 20, 17, 59)
    for tz in (timezone.utc, ZoneInfo("America/Los_Angeles"), ZoneInfo("Asia/Kolkata")):
        assert add_working(start.astimezone(tz), timedelta(minutes=2), CalendarSettings()) == sh(2026, 11, 23, 9, 1)


@pytest.mark.parametrize("host_tz", ["America/New_York", "Europe/London", "Pacific/Kiritimati"])
def test_host_timezone_changes_nothing(monkeypatch: pytest.MonkeyPatch, host_tz: str) -> None:
    import time_machine

    monkeypatch.setenv("TZ", host_tz)
    time.tzset()
    try:
        # The host also believes it is a different day; nothing here may look at it.
        with time_machine.travel(datetime(2031, 1, 1, 3, 0, tzinfo=ZoneInfo(host_tz)), tick=False):
            assert add_working(sh(2026, 11, 20, 17, 59), timedelta(minutes=2), GOLDEN_WEEK) == sh(2026, 11, 23, 9, 1)
            assert add_working(sh(2026, 9, 30, 17, 0), timedelta(hours=2), GOLDEN_WEEK) == sh(2026, 10, 8, 10, 0)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert os.environ.get("TZ") is None


def test_other_calendar_timezone_and_hours() -> None:
    cal = CalendarSettings(timezone="Europe/Berlin", working_hours="08:30-17:00")
    be = ZoneInfo("Europe/Berlin")
    assert add_working(datetime(2026, 11, 20, 16, 50, tzinfo=be), timedelta(minutes=20), cal) == \
        datetime(2026, 11, 23, 8, 40, tzinfo=be)


def test_bad_calendar_values_fail_at_start_naming_the_key() -> None:
    from tests.conftest import make_settings

    with pytest.raises(ConfigError, match=r"\[calendar\] holidays"):
        make_settings(calendar={"holidays": ["2026-10-32"]})
    with pytest.raises(ConfigError, match=r"\[calendar\] extra_workdays"):
        make_settings(calendar={"extra_workdays": ["2026-10-10..2026-10-01"]})
    with pytest.raises(ConfigError, match=r"\[sla\] digest_time"):
        make_settings(sla={"digest_time": "6pm"})


_instants = st.datetimes(min_value=datetime(2026, 9, 1), max_value=datetime(2026, 12, 31),
                         timezones=st.just(SH))


@hsettings(max_examples=200, deadline=None)
@given(start=_instants, minutes=st.integers(min_value=1, max_value=60 * 60))
def test_add_and_between_agree(start: datetime, minutes: int) -> None:
    cal = WorkCalendar.from_settings(GOLDEN_WEEK)
    delta = timedelta(minutes=minutes)
    end = cal.add(start, delta)
    assert cal.between(start, end) == delta
    assert cal.is_working(end - timedelta(microseconds=1))
    # Going back from the end lands on the first working instant at or after start.
    assert cal.add(end, -delta) == cal.next_working_instant(start)
