"""Who is on duty (值班) outside working hours, per team.

The rotation comes from [duty] in the config (team name -> rep ids, in turn); a manager may set
it for their team at any time (text command "值班 NAME…", `leadbot duty set`), which overrides the
config until cleared. The override lives in the `kv` table so every process sees it.

A rotation gives one rep per off-hours period: the evening after a working day, or a whole
weekend or holiday, is one period, named after the last working day before it; the turn is that
day's ordinal modulo the rotation's length, so every process agrees on it without state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.kv import KeyValueStore
from store.models import KeyValue
from leadbot.clock import Clock
from leadbot.workcal import WorkCalendar

ALL_TEAMS = ""  # the rotation of rules without a team


def duty_key(team: str) -> str:
    return f"duty:team:{team}" if team else "duty:all"


@dataclass(frozen=True, slots=True)
class DutyOverride:
    reps: tuple[str, ...]  # rep external ids, in turn
    set_by: str
    at: str


def parse_override(value: str | None) -> DutyOverride | None:
    if not value:
        return None
    data = json.loads(value)
    return DutyOverride(reps=tuple(str(r) for r in data.get("reps", ())), set_by=str(data.get("set_by", "")),
                        at=str(data.get("at", "")))


async def read_override(conn: AsyncConnection, team: str) -> DutyOverride | None:
    """The override in force for `team`, read on the routing transaction's connection."""
    value = (await conn.execute(select(KeyValue.value).where(KeyValue.key == duty_key(team)))).scalar_one_or_none()
    return parse_override(value)


def turn(calendar: WorkCalendar, now: datetime, length: int) -> int:
    """Whose turn it is in a rotation of `length` at `now` (an off-hours instant)."""
    if length <= 1:
        return 0
    try:
        last_worked = calendar.add(now, -timedelta(microseconds=1))
    except ValueError:  # no working day in reach: one period
        return 0
    return calendar.local_date(last_worked).toordinal() % length


def in_turn(rotation: Sequence[Any], start: int) -> list[Any]:
    """The rotation starting with the rep whose turn it is (the next ones cover their absence)."""
    items = list(rotation)
    if not items:
        return []
    start %= len(items)
    return items[start:] + items[:start]


class DutyStore:
    """Reading and changing the on-duty override of a team (managers, CLI)."""

    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self.kv = KeyValueStore(engine, clock)
        self.clock = clock

    async def get(self, team: str) -> DutyOverride | None:
        entry = await self.kv.get(duty_key(team))
        return parse_override(entry.value if entry else None)

    async def set(self, team: str, reps: Sequence[str], set_by: str) -> DutyOverride:
        override = DutyOverride(reps=tuple(reps), set_by=set_by, at=self.clock.now().isoformat())
        await self.kv.set(duty_key(team), json.dumps({"reps": list(override.reps), "set_by": set_by,
                                                      "at": override.at}, ensure_ascii=False), None)
        return override

    async def clear(self, team: str) -> bool:
        return await self.kv.delete(duty_key(team))
