"""Shared fixtures. The suite runs on SQLite always and on PostgreSQL when
LEADBOT_TEST_DATABASE_URL is set (CI sets it): every DB test goes through `engine`."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import create_engine
from store.migrate import upgrade
from leadbot.clock import ManualClock
from leadbot.settings import Settings, settings_from_mapping

PG_URL = os.environ.get("LEADBOT_TEST_DATABASE_URL", "")
INTAKE_TOKEN = "test-intake-token"


async def _fresh_pg_engine() -> tuple[AsyncEngine, str]:
    """A schema of its own per test, so tests never see each other's rows."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    await admin.dispose()
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(PG_URL, connect_args={"server_settings": {"search_path": schema}},
                                 pool_size=5, max_overflow=10)
    return engine, schema


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return PG_URL or f"sqlite+aiosqlite:///{tmp_path}/leadbot.db"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if PG_URL:
        eng, schema = await _fresh_pg_engine()
        await upgrade(eng)
        yield eng
        await eng.dispose()
        admin = create_engine(PG_URL)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()
    else:
        eng = create_engine(f"sqlite+aiosqlite:///{tmp_path}/leadbot.db")
        await upgrade(eng)
        yield eng
        await eng.dispose()


@pytest.fixture
def clock() -> ManualClock:
    # A Monday 10:00 in Shanghai: inside default working hours, so SLA tests start on the clock.
    return ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))


def make_settings(**sections: dict) -> Settings:
    base: dict = {"intake": {"api_tokens": [INTAKE_TOKEN]}, "server": {"replay_window_seconds": 300}}
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return settings_from_mapping(base, environ={})


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
async def store(engine: AsyncEngine, clock: ManualClock):
    from crm.sql_store import SqlCRMStore

    return SqlCRMStore(engine, clock)


@pytest.fixture
async def client(aiohttp_client, engine: AsyncEngine, clock: ManualClock, settings: Settings):
    """The whole leadbot app over HTTP, on the test database and the manual clock."""
    from bot.app import create_app

    app = create_app(settings, clock=clock, engine=engine)
    return await aiohttp_client(app)


AUTH = {"Authorization": f"Bearer {INTAKE_TOKEN}"}


@pytest.fixture
def aiohttp_client(engine, aiohttp_client):  # noqa: F811 - wraps pytest-aiohttp's fixture
    """pytest-aiohttp's client, set up after (so torn down before) the database: an app's
    background workers stop before its schema is dropped."""
    return aiohttp_client


@pytest.fixture
def aiohttp_server(engine, aiohttp_server):  # noqa: F811 - wraps pytest-aiohttp's fixture
    return aiohttp_server


# Names by which a test module reaches the database outside the `engine`/`db_url` fixtures
# (a leadbot process on a fresh database, a choice made by the URL).
_CHOOSES_ITS_DATABASE = ("PG_URL", "LEADBOT_TEST_DATABASE_URL", "fresh_database", "LeadbotProcess")


def _touches_the_database(item: pytest.Item) -> bool:
    if {"engine", "db_url"} & set(getattr(item, "fixturenames", ())):
        return True
    path = getattr(getattr(item, "module", None), "__file__", None)
    if not path:
        return True  # not a plain test function: keep it rather than guess
    source = Path(path).read_text(encoding="utf-8")
    return any(name in source for name in _CHOOSES_ITS_DATABASE)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The PostgreSQL pass runs what can differ on PostgreSQL: every test whose fixtures reach
    the database (`engine`, `db_url`) or whose module chooses by the database URL. The rest ran
    unchanged in the SQLite pass a moment before; running them again only doubled CI time."""
    if not PG_URL:
        return
    kept = [item for item in items if _touches_the_database(item)]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
