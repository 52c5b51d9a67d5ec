"""A serving process copies SQLite's WAL back in the background, never inside a commit: the
lead path's one pooled connection no longer waits for the disk while it checkpoints."""

from __future__ import annotations

from sqlalchemy import text

from bot.app import create_app
from bot.context import CTX
from store.db import create_engine
from store.wal_checkpoint import WalCheckpointer, checkpointer_for
from tests.conftest import make_settings


async def _autocheckpoint(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one()


async def test_commits_leave_the_log_to_the_checkpointer(tmp_path) -> None:
    path = f"{tmp_path}/wal.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}", background_checkpoints=True)
    checkpointer = WalCheckpointer(path)
    try:
        assert await _autocheckpoint(engine) == 0
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (n INTEGER, pad TEXT)"))
        for i in range(30):  # ~1,500 pages: past SQLite's own 1,000-page threshold
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (:n, :pad)"),
                                   [{"n": i * 100 + j, "pad": "x" * 2000} for j in range(100)])
        busy, frames, copied = checkpointer.checkpoint()
        assert busy == 0 and frames > 1000 and copied == frames  # nobody checkpointed before
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 3000
    finally:
        await checkpointer.stop()
        await engine.dispose()


async def test_other_processes_keep_sqlites_own_checkpoints(tmp_path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/cli.db")
    try:
        assert await _autocheckpoint(engine) == 1000
    finally:
        await engine.dispose()


def test_a_serving_app_on_a_sqlite_file_runs_the_checkpointer(tmp_path) -> None:
    served = create_app(make_settings(database={"url": f"sqlite+aiosqlite:///{tmp_path}/serve.db"}))
    workers = served[CTX].services.workers
    assert [w for w in workers if isinstance(w, WalCheckpointer)]
    assert checkpointer_for("postgresql+asyncpg://u@h/db") is None
    assert checkpointer_for("sqlite+aiosqlite:///:memory:") is None
