"""SQLite WAL checkpoints off the request path.

A WAL database copies its log back into the main file now and then (a checkpoint, with an fsync).
By default the connection whose commit crosses 1,000 pages of log does it, inside that commit: on
the one pooled connection of a serving process, so every lead in flight waited for the disk (p99
lead-to-card 180-500 ms at 50 leads/s against 60-110 ms without). A serving process turns that off
(`create_engine(..., background_checkpoints=True)`) and runs this instead: a PASSIVE checkpoint
every second from a connection and a thread of its own, which never blocks a reader or a writer.
Other processes on the file (the CLI) keep SQLite's automatic checkpoints.
"""

from __future__ import annotations

import asyncio
import sqlite3

import structlog
from sqlalchemy.engine import make_url

from leadbot.tasks import cancel_and_wait

log = structlog.get_logger(__name__)


class WalCheckpointer:
    INTERVAL_SECONDS = 1.0

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint (blocking: run it on a thread). Returns SQLite's answer: (busy,
        frames in the log, frames copied back)."""
        if self._conn is None:
            # Used from whichever executor thread runs it, one call at a time.
            self._conn = sqlite3.connect(self.path, timeout=0, check_same_thread=False)
        busy, frames, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(frames), int(copied)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sqlite-wal-checkpoint")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.to_thread(conn.close)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.INTERVAL_SECONDS)
            try:
                await asyncio.to_thread(self.checkpoint)
            except sqlite3.Error as e:
                # A lock or a full disk: the log keeps growing until the next try succeeds.
                log.warning("sqlite.checkpoint_failed", error=str(e)[:200])


def checkpointer_for(url: str) -> WalCheckpointer | None:
    """A checkpointer for a SQLite file URL, else None (PostgreSQL, :memory:)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return WalCheckpointer(parsed.database)
