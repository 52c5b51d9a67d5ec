"""Seeding helpers for routing tests: teams, reps, customers and leads written straight through
the models (routing reads them the same way whoever wrote them)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import session_factory
from store.models import Customer, Lead, Rep, Team
from routing import Router
from leadbot.clock import ManualClock
from tests.conftest import make_settings

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 Shanghai


class Seed:
    def __init__(self, engine: AsyncEngine, clock: ManualClock) -> None:
        self.engine = engine
        self.clock = clock
        self.sessions = session_factory(engine)
        self._n = 0

    async def team(self, name: str, manager_id: int | None = None) -> int:
        async with self.sessions() as s, s.begin():
            row = Team(name=name, manager_id=manager_id, created_at=self.clock.now())
            s.add(row)
            await s.flush()
            return row.id

    async def set_team_manager(self, team_id: int, manager_id: int) -> None:
        async with self.sessions() as s, s.begin():
            (await s.get(Team, team_id)).manager_id = manager_id

    async def rep(self, name: str, team_id: int | None = None, **kw: Any) -> int:
        self._n += 1
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            row = Rep(external_id=kw.pop("external_id", f"r{self._n}-{name}"), name=name, team_id=team_id,
                      created_at=now, updated_at=now, regions=[], product_lines=[], attributes={}, **kw)
            s.add(row)
            await s.flush()
            return row.id

    async def update_rep(self, rep_id: int, **kw: Any) -> None:
        async with self.sessions() as s, s.begin():
            row = await s.get(Rep, rep_id)
            for k, v in kw.items():
                setattr(row, k, v)

    async def customer(self, owner_id: int | None = None, **kw: Any) -> int:
        now = self.clock.now()
        async with self.sessions() as s, s.begin():
            row = Customer(display_name=kw.pop("display_name", "客户"), owner_id=owner_id, attributes={},
                           created_at=now, updated_at=now, **kw)
            s.add(row)
            await s.flush()
            return row.id

    async def lead(self, **kw: Any) -> int:
        return (await self.leads(1, **kw))[0]

    async def leads(self, n: int, **kw: Any) -> list[int]:
        now = self.clock.now()
        kw.setdefault("extra", {})
        async with self.sessions() as s, s.begin():
            rows = [Lead(status=kw.get("status", "new"), created_at=now, updated_at=now, flags=[],
                         **{k: v for k, v in kw.items() if k != "status"}) for _ in range(n)]
            s.add_all(rows)
            await s.flush()
            return [r.id for r in rows]

    async def get_lead(self, lead_id: int) -> Lead:
        async with self.sessions() as s:
            return await s.get(Lead, lead_id)

    async def get_rep(self, rep_id: int) -> Rep:
        async with self.sessions() as s:
            return await s.get(Rep, rep_id)


@pytest.fixture
def seed(engine: AsyncEngine, clock: ManualClock) -> Seed:
    return Seed(engine, clock)


@pytest.fixture
def make_router(engine: AsyncEngine, clock: ManualClock):
    def _make(rules: list[dict] | None = None, calendar: dict | None = None, duty: dict | None = None,
              **assignment: Any) -> Router:
        settings = make_settings(assignment={"rules": rules or [], **assignment}, calendar=calendar or {},
                                 duty=duty or {})
        return Router(engine, settings.assignment, settings.calendar, clock, duty=settings.duty)

    return _make
