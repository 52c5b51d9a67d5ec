"""Alembic, driven from code: `leadbot db upgrade` and `serve` call upgrade(); /readyz asks
is_current(). The migration chain lives in store/migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head() or ""


async def upgrade(engine: AsyncEngine) -> None:
    """Brings the schema to head on the engine's own connection (works for SQLite files,
    in-memory databases and PostgreSQL alike)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))

    def _run(sync_conn) -> None:  # type: ignore[no-untyped-def]
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        await conn.run_sync(_run)


async def current_revision(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision() or "")


async def is_current(engine: AsyncEngine) -> bool:
    return await current_revision(engine) == head_revision()
