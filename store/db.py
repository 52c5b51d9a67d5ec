"""Engine and session factory. Nothing here is module-level state: create_app owns the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine


def insert_for(dialect: str) -> Any:
    """The dialect's INSERT, the one with ON CONFLICT (both SQLite and PostgreSQL have it; the
    generic insert() has not)."""
    return pg_insert if dialect == "postgresql" else sqlite_insert


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, echo: bool = False, *, background_checkpoints: bool = False) -> AsyncEngine:
    """`background_checkpoints`: the caller runs store.wal_checkpoint.WalCheckpointer, so
    a commit never copies the WAL back itself (SQLite only)."""
    kwargs: dict[str, Any] = {"echo": echo}
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # One connection: SQLite serialises writers anyway, and a single connection avoids
        # "database is locked" between our own pooled connections.
        kwargs["pool_size"] = 1
        kwargs["max_overflow"] = 0
        kwargs["connect_args"] = {"timeout": 30}
        if make_url(url).get_driver_name() == "aiosqlite":
            from store.sqlite_driver import module

            one_hop = module()  # one trip to aiosqlite's thread per statement, or none (WAL)
            if one_hop is not None:
                kwargs["module"] = one_hop
                # Statements run on the loop thread, commits on aiosqlite's: never both at once
                # (one statement at a time per connection), which is what sqlite3 allows.
                kwargs["connect_args"]["check_same_thread"] = False
    else:
        kwargs["pool_size"] = 10
        kwargs["max_overflow"] = 10
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            wal = (cur.fetchone() or ("",))[0] == "wal"  # not for :memory:, nor a read-only file
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            if background_checkpoints:
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()
            if wal and hasattr(dbapi_conn, "run_statements_inline"):
                dbapi_conn.run_statements_inline()
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)
