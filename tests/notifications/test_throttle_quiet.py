from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from leadbot.settings import CalendarSettings
from notifications.quiet_hours import quiet_until
from notifications.throttle import RecipientThrottle, Window
from notifications.worker import compose_text, exponential_backoff

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
SH = ZoneInfo("Asia/Shanghai")


def test_wecom_minute_and_hour_windows() -> None:
    t = RecipientThrottle()
    assert t.budget("wecom", "u", T0) == 30
    for i in range(30):
        assert t.try_acquire("wecom", "u", T0 + timedelta(seconds=i))
    assert t.budget("wecom", "u", T0 + timedelta(seconds=30)) == 0
    assert not t.try_acquire("wecom", "u", T0 + timedelta(seconds=30))
    # The first send leaves the minute window 60 s after it happened.
    assert t.next_free("wecom", "u", T0 + timedelta(seconds=30)) == T0 + timedelta(seconds=60)
    assert t.budget("wecom", "u", T0 + timedelta(seconds=60, microseconds=1)) == 1
    assert t.budget("wecom", "other", T0) == 30  # per recipient


def test_hour_window_binds_after_many_minutes() -> None:
    t = RecipientThrottle({"wecom": (Window(30, 60), Window(1000, 3600))})
    at = T0
    for _ in range(1000):
        t.record("wecom", "u", at)
        at += timedelta(seconds=2.1)  # 28.6/min: under the minute limit
    now = at
    assert t.budget("wecom", "u", now) == 0
    assert t.next_free("wecom", "u", now) == T0 + timedelta(seconds=3600)


def test_unthrottled_channel_and_seed() -> None:
    t = RecipientThrottle()
    assert t.budget("webhook", "x", T0) is None
    t.seed([("wecom_robot", "key1", T0 - timedelta(seconds=10))] * 20)
    assert t.budget("wecom_robot", "key1", T0) == 0
    assert t.budget("dingtalk", "u", T0) == 500


def test_quiet_hours() -> None:
    cal = CalendarSettings()
    monday_10 = datetime(2026, 11, 23, 10, 0, tzinfo=SH)
    assert quiet_until(monday_10, cal) is None
    monday_20 = datetime(2026, 11, 23, 20, 0, tzinfo=SH)
    assert quiet_until(monday_20, cal) == datetime(2026, 11, 24, 9, 0, tzinfo=SH)
    monday_7 = datetime(2026, 11, 23, 7, 0, tzinfo=SH)
    assert quiet_until(monday_7, cal) == datetime(2026, 11, 23, 9, 0, tzinfo=SH)
    friday_19 = datetime(2026, 11, 27, 19, 0, tzinfo=SH)
    assert quiet_until(friday_19, cal) == datetime(2026, 11, 30, 9, 0, tzinfo=SH)
    holiday = CalendarSettings(holidays=("2026-11-24",), extra_workdays=("2026-11-29",))
    assert quiet_until(monday_20, holiday) == datetime(2026, 11, 25, 9, 0, tzinfo=SH)
    assert quiet_until(friday_19, holiday) == datetime(2026, 11, 29, 9, 0, tzinfo=SH)


def test_backoff_and_text() -> None:
    assert exponential_backoff(1, lambda: 1.0) == 2.0
    assert exponential_backoff(4, lambda: 1.0) == 16.0
    assert exponential_backoff(4, lambda: 0.0) == 8.0
    assert exponential_backoff(30, lambda: 1.0) == 900.0
    text = compose_text("新" * 2000, "https://x.example/a/tok")
    assert len(text.encode()) <= 2048 and text.endswith("点击处理：https://x.example/a/tok")
