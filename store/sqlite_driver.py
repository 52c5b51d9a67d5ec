"""SQLite through aiosqlite with ONE hop to the driver's thread per statement.

SQLAlchemy's aiosqlite adapter makes four trips to aiosqlite's thread for every statement
(open a cursor, execute, fetch all, close), each a queue hand-off, a thread wake-up, a
call_soon_threadsafe and a loop wake-up: ~0.1 ms apiece even on an idle machine, and far more
while the loop is busy, because the thread must win the GIL back each time. Routing a lead runs
~30 statements, so the hops (not SQLite, which answers in microseconds) set how many leads a
second one process can route. Here the four steps run as one function on the thread.

Same driver, same URL (`sqlite+aiosqlite://`), same error classes, same transactions; only the
cursor differs, and a commit or rollback with no transaction open (sqlite3 would do nothing)
skips the trip. Server-side cursors
(`stream_results`) keep SQLAlchemy's own. `module()` returns None when aiosqlite's or
SQLAlchemy's internals this relies on have moved; the engine then uses the stock adapter.
"""

from __future__ import annotations

import collections
import sqlite3
import time
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")


def _one_hop(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool
             ) -> tuple[Any, list[Any] | None, int, int | None]:
    """Runs on aiosqlite's thread: cursor, execute, fetch, close in one go."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else None
        return cursor.description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


# How long a statement waits for another connection's write lock (on the driver's thread; the
# connection's own busy timeout is 0 so a statement on the loop thread never waits).
LOCK_WAIT_SECONDS = 30.0


def _busy(error: Exception) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def patiently(fn: Callable[..., T], *args: Any) -> T:
    """Runs fn(*args) on aiosqlite's thread, waiting out another connection's write lock as a
    busy timeout would: an operation that met SQLITE_BUSY did nothing (a statement) or was rolled
    back (fn's own transaction), so it may simply run again."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    pause = 0.001
    while True:
        try:
            return fn(*args)
        except sqlite3.OperationalError as error:
            if not _busy(error) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


async def on_driver_thread(aio: Any, fn: Callable[..., T], *args: Any) -> T:
    """fn(sqlite3 connection, *args) on the aiosqlite connection's own thread, patiently: one
    trip for a whole batch of work. The one place outside the adapter below that reaches into
    aiosqlite's internals (Connection._execute, ._conn), so a change there is found here."""
    return await aio._execute(patiently, fn, aio._conn, *args)


def module() -> Any | None:
    """The DBAPI object to pass as create_engine(module=...) for sqlite+aiosqlite, or None."""
    try:
        import aiosqlite
        from sqlalchemy.dialects.sqlite.aiosqlite import (AsyncAdapt_aiosqlite_connection,
                                                          AsyncAdapt_aiosqlite_cursor,
                                                          AsyncAdapt_aiosqlite_dbapi)
        from sqlalchemy.util import await_
    except ImportError:
        return None
    if not (hasattr(aiosqlite.Connection, "_execute") and hasattr(aiosqlite.Connection, "_conn")):
        return None

    class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
        __slots__ = ("_description", "_rowcount", "_lastrowid", "_arraysize")

        def __init__(self, adapt_connection: Any) -> None:
            # No aiosqlite cursor is opened here: that was the first of the four hops.
            self._adapt_connection = adapt_connection
            self._connection = adapt_connection._connection
            self._cursor = None
            self._soft_closed_memoized = {}
            self._rows: collections.deque[Any] = collections.deque()
            self._description, self._rowcount, self._lastrowid, self._arraysize = None, -1, None, 1

        @property
        def description(self) -> Any:
            return self._description

        @property
        def rowcount(self) -> int:
            return self._rowcount

        @property
        def lastrowid(self) -> Any:
            return self._lastrowid

        @property
        def arraysize(self) -> int:
            return self._arraysize

        @arraysize.setter
        def arraysize(self, value: int) -> None:
            self._arraysize = value

        async def _async_soft_close(self) -> None:
            return None  # the rows are already here and the cursor closed on the thread

        def close(self) -> None:
            self._rows.clear()

        def execute(self, operation: Any, parameters: Any = None) -> Any:
            try:
                return await_(self._hop(operation, parameters, False))
            except Exception as error:
                self._adapt_connection._handle_exception(error)

        def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
            try:
                return await_(self._hop(operation, seq_of_parameters, True))
            except Exception as error:
                self._adapt_connection._handle_exception(error)

        async def _hop(self, operation: Any, parameters: Any, many: bool) -> None:
            async with self._adapt_connection._execute_mutex:
                aio = self._connection
                result = None
                if self._adapt_connection.inline:
                    # On the loop's own thread: SQLite answers in microseconds, the trip to the
                    # driver's thread and back (queue, wake-ups, the GIL) cost far more.
                    try:
                        result = _one_hop(aio._conn, operation, parameters, many)
                    except sqlite3.OperationalError as error:
                        if not _busy(error):
                            raise
                        # Another connection holds the write lock: wait for it on the thread.
                if result is None:
                    if self._adapt_connection.inline:
                        result = await aio._execute(patiently, _one_hop, aio._conn, operation, parameters, many)
                    else:
                        result = await aio._execute(_one_hop, aio._conn, operation, parameters, many)
                self._description, rows, self._rowcount, self._lastrowid = result
            self._rows = collections.deque(rows) if rows is not None else collections.deque()

    class OneHopConnection(AsyncAdapt_aiosqlite_connection):
        __slots__ = ("inline",)
        _cursor_cls = OneHopCursor

        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self.inline = False

        def run_statements_inline(self) -> None:
            """Statements from now on run on the calling (event loop) thread; commits and
            rollbacks stay on the driver's thread (a commit may checkpoint the WAL, which syncs
            to disk). Only for a WAL database: a reader never waits there, and the one wait a
            writer has (another connection's write lock) is sent to the thread. The
            connection's busy timeout becomes 0 so that wait is noticed instead of sat out."""
            self.cursor().execute("PRAGMA busy_timeout=0")
            self.inline = True

        # With sqlite3's default (legacy) transaction control a SELECT opens no transaction, so
        # closing a read-only connection asks for a rollback that has nothing to undo: answered
        # here without a trip to the thread. Reading `in_transaction` is safe from this thread
        # (sqlite3_get_autocommit, no statement is in flight: SQLAlchemy calls this between
        # statements) and it is exactly what sqlite3 itself checks before doing nothing.
        def rollback(self) -> None:
            if self._connection._connection is not None and self._connection._conn.in_transaction:
                super().rollback()

        def commit(self) -> None:
            if not (self._connection._connection is not None and self._connection._conn.in_transaction):
                return
            if not self.inline:
                super().commit()
                return
            try:  # the connection's busy timeout is 0 (see run_statements_inline)
                await_(self._connection._execute(patiently, self._connection._conn.commit))
            except Exception as error:
                self._handle_exception(error)

    class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
        def connect(self, *arg: Any, **kw: Any) -> Any:
            stock = super().connect(*arg, **kw)
            return OneHopConnection(self, stock._connection)

    return OneHopDBAPI(aiosqlite, sqlite3)
