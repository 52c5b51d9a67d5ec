"""Fixtures for the scheduler tests: a recording LadderActions, leads and reps in the test DB."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import session_factory
from store.models import Lead, Rep, Team
from store.timers import TimerStore
from leadbot.clock import ManualClock


class RecordingActions:
    """Records every call as (action, lead_id, key, payload) with the clock's time."""

    def __init__(self, clock: ManualClock | None = None) -> None:
        self.clock = clock
        self.calls: list[tuple[str, Any, str, Mapping[str, Any]]] = []
        self.at: list[datetime | None] = []
        self.digests: list[tuple[Any, bytes | None, str]] = []
        self.fail_next: int = 0
        self.on_call: Any = None

    async def _record(self, name: str, lead_id: int, key: str, payload: Mapping[str, Any]) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("delivery down")
        self.calls.append((name, lead_id, key, dict(payload)))
        self.at.append(self.clock.now() if self.clock else None)
        if self.on_call:
            await self.on_call(name, lead_id, key, payload)

    async def remind(self, lead_id, timer_key, payload):
        await self._record("remind", lead_id, timer_key, payload)

    async def escalate(self, lead_id, timer_key, payload):
        await self._record("escalate", lead_id, timer_key, payload)

    async def reassign(self, lead_id, timer_key, payload):
        await self._record("reassign", lead_id, timer_key, payload)

    async def return_to_pool(self, lead_id, timer_key, payload):
        await self._record("return_to_pool", lead_id, timer_key, payload)

    async def recycle_from_pool(self, lead_id, timer_key, payload):
        await self._record("recycle_from_pool", lead_id, timer_key, payload)

    async def stagnation(self, lead_id, timer_key, payload):
        await self._record("stagnation", lead_id, timer_key, payload)

    async def route_at_window(self, lead_id, timer_key, payload):
        await self._record("route_at_window", lead_id, timer_key, payload)

    async def digest(self, report, chart_png, timer_key):
        self.digests.append((report, chart_png, timer_key))

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def keys(self) -> list[str]:
        return [c[2] for c in self.calls]


@pytest.fixture
def actions(clock: ManualClock) -> RecordingActions:
    return RecordingActions(clock)


@pytest.fixture
def timers(engine: AsyncEngine, clock: ManualClock) -> TimerStore:
    return TimerStore(engine, clock)


async def add_team(engine: AsyncEngine, clock: ManualClock, name: str, manager_id: int | None = None) -> int:
    async with session_factory(engine)() as s, s.begin():
        team = Team(name=name, manager_id=manager_id, created_at=clock.now())
        s.add(team)
        await s.flush()
        return team.id


async def add_rep(engine: AsyncEngine, clock: ManualClock, name: str, team_id: int | None = None,
                  role: str = "rep") -> int:
    async with session_factory(engine)() as s, s.begin():
        rep = Rep(external_id=f"r-{name}", name=name, team_id=team_id, role=role,
                  created_at=clock.now(), updated_at=clock.now())
        s.add(rep)
        await s.flush()
        return rep.id


async def add_lead(engine: AsyncEngine, clock: ManualClock, **values: Any) -> int:
    now = clock.now()
    base: dict[str, Any] = {"status": "new", "created_at": now, "updated_at": now, "last_activity_at": now}
    base.update(values)
    async with session_factory(engine)() as s, s.begin():
        lead = Lead(**base)
        s.add(lead)
        await s.flush()
        return lead.id


async def set_lead(engine: AsyncEngine, lead_id: int, **values: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(Lead).where(Lead.id == lead_id).values(**values))
