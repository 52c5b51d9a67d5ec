"""What `leadbot serve` says about time at start, and how instants read in the configured zone."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.cli import time_statement
from store.db import create_engine
from store.migrate import upgrade
from store.outbox import NewOutboxItem, OutboxRepo
from leadbot.clock import ManualClock
from leadbot.settings import settings_from_mapping
from leadbot.time_text import calendar_line, local_text, now_line
from notifications.quiet_hours import HELD_REASON

SH = ZoneInfo("Asia/Shanghai")
SATURDAY_NIGHT = datetime(2026, 11, 28, 22, 30, tzinfo=SH)


def test_the_calendar_in_force_is_named_and_a_default_one_says_so() -> None:
    default = settings_from_mapping({}, environ={})
    assert "built-in default (no [calendar] in the config)" in calendar_line(default, "calendar" in default.configured,
                                                                           "en")
    assert "内置默认（配置中没有 [calendar]）" in calendar_line(default, False, "zh")
    mine = settings_from_mapping({"calendar": {"timezone": "Asia/Urumqi", "holidays": ["2026-10-01..2026-10-07"]}},
                                 environ={}, source="prod.toml")
    line = calendar_line(mine, "calendar" in mine.configured, "en")
    assert "Asia/Urumqi" in line and "7 holidays" in line and "[calendar] in prod.toml" in line
    assert "节假日 7 天" in calendar_line(mine, True, "zh")
    env = settings_from_mapping({}, environ={"LEADBOT_CALENDAR_TIMEZONE": "Europe/Berlin"})
    assert "calendar" in env.configured


def test_outside_working_hours_says_what_is_held_until_when() -> None:
    s = settings_from_mapping({}, environ={})
    line = now_line(s, SATURDAY_NIGHT, held=3, lang="en")
    assert line.startswith("now 2026-11-28 22:30 Asia/Shanghai: outside working hours")
    assert "held until 2026-11-30 09:00 Asia/Shanghai (3 held now)" in line
    assert now_line(s, datetime(2026, 12, 1, 10, 0, tzinfo=SH), lang="en").endswith("inside working hours")
    assert "暂存到 2026-11-30 09:00 Asia/Shanghai（当前暂存 3 条）" in now_line(s, SATURDAY_NIGHT, held=3)
    round_the_clock = settings_from_mapping({"sla": {"working_time": False}}, environ={})
    assert "nothing is held" in now_line(round_the_clock, SATURDAY_NIGHT, lang="en")


def test_local_text_reads_in_the_calendar_zone() -> None:
    s = settings_from_mapping({}, environ={})
    monday_9 = datetime(2026, 11, 30, 1, 0, tzinfo=ZoneInfo("UTC"))
    assert local_text(monday_9, s.calendar, "zh", now=SATURDAY_NIGHT) == "周一 09:00"
    assert local_text(monday_9, s.calendar, "en", now=SATURDAY_NIGHT) == "Mon 09:00"
    assert local_text(monday_9, s.calendar, "zh") == "11月30日 周一 09:00"
    assert local_text(SATURDAY_NIGHT, s.calendar, "zh", now=SATURDAY_NIGHT) == "周六 22:30"
    assert local_text(SATURDAY_NIGHT, s.calendar, "en", now=datetime(2026, 12, 20, tzinfo=SH)) == "Sat 28 Nov 22:30"


async def test_serve_statement_counts_what_is_already_held(tmp_path: Path) -> None:
    s = settings_from_mapping({"database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"},
                               "server": {"language": "en"}}, environ={})
    engine = create_engine(s.database.url)
    try:
        await upgrade(engine)
        repo = OutboxRepo(engine, ManualClock(SATURDAY_NIGHT))
        await repo.enqueue(NewOutboxItem(key="k1", channel="wecom", kind="text", recipient="u", payload={"text": "x"}))
        entry = (await repo.take_due(10, SATURDAY_NIGHT, lease_seconds=60))[0]
        await repo.defer(entry, datetime(2026, 11, 30, 9, 0, tzinfo=SH), HELD_REASON)
        lines = await time_statement(engine, s)
    finally:
        await engine.dispose()
    assert lines[0].startswith("calendar: Asia/Shanghai") and lines[2].startswith("time: SLA clocks count")
    assert "inside working hours" in lines[1] or "(1 held now)" in lines[1]


def test_team_calendars_are_validated_and_named() -> None:
    import pytest

    from leadbot.settings import ConfigError

    s = settings_from_mapping({"calendar": {"teams": {"柏林": {"timezone": "Europe/Berlin",
                                                              "holidays": ["2026-12-24..2026-12-26"]}}}},
                              environ={})
    berlin = s.calendar.for_team("柏林")
    assert berlin.timezone == "Europe/Berlin" and berlin.working_hours == "09:00-18:00"
    assert s.calendar.for_team("华东") is s.calendar
    assert "team 柏林: Europe/Berlin 09:00-18:00" in calendar_line(s, True, "en")
    with pytest.raises(ConfigError, match=r"\[calendar\] teams.柏林.timezone: unknown timezone"):
        settings_from_mapping({"calendar": {"teams": {"柏林": {"timezone": "Mars/Base"}}}}, environ={})
    with pytest.raises(ConfigError, match=r"\[calendar\] teams.柏林.digest: unknown key"):
        settings_from_mapping({"calendar": {"teams": {"柏林": {"digest": "x"}}}}, environ={})
