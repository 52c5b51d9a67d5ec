"""Per-recipient and per-robot platform limits as ONE budget in the database, whichever process
(or host) sends.

WeCom silently drops app messages past 30 per member per minute (and 1000 an hour) while still
answering errcode 0; group robots take 20 a minute; a DingTalk custom robot takes 20 a minute and
blocks itself for 10 minutes after going over (errcode 410100). A process-local window cannot keep
several processes under those limits: each would spend the whole budget. So every counted message
holds a reservation row, taken before the send:

- ``reserve(scope, want, windows)`` locks the scope's row (an upsert: a row lock on PostgreSQL,
  the write lock on SQLite), counts the scope's reservations inside each window, and inserts up
  to ``want`` new ones: ``held``, with ``at`` = now + hold (the latest instant the platform may
  receive the message: sends time out before that), so messages in flight count;
- after the platform's answer the holder ``confirm``s (``at`` = the answer's time, never earlier
  than the platform's receipt) or ``release``s (the message never reached the platform: the row
  goes); a holder that crashed leaves a ``held`` row, which counts until its ``at`` leaves the
  windows: a crash costs a slot, never an overshoot;
- a block the platform imposed (DingTalk's 10 minutes after 410100, an app's QPM minute) is
  kept by store.send_blocks and checked by the worker before it reserves.

Scopes are ``"<channel>:<recipient>"``; a recipient that looks like a URL or a long token (a
robot webhook carries its access token) is hashed, so no secret sits in the scope.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Sequence, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.db import insert_for
from store.models import SendReservation, SendScope

# (limit, seconds): at most `limit` messages inside any `seconds`-long window.
Windows = Sequence[tuple[int, float]]

_SCOPES = cast(Table, SendScope.__table__)
_RES = cast(Table, SendReservation.__table__)
_r = _RES.c

_WINDOW = (select(_r.at).where(_r.scope == bindparam("scope"), _r.at > bindparam("since")).order_by(_r.at))
_FORGET = delete(_RES).where(_r.scope == bindparam("scope"), _r.at <= bindparam("horizon"))
_ADD = insert(_RES)
_CONFIRM = (update(_RES).where(_r.id.in_(bindparam("ids", expanding=True)))
            .values(state="sent", at=bindparam("now")))
_RELEASE = delete(_RES).where(_r.id.in_(bindparam("ids", expanding=True)))


async def confirm_in(conn: AsyncConnection, ids: Sequence[int], now: datetime) -> None:
    """SendBudget.confirm inside the caller's transaction (the outbox row's ``sent``)."""
    await conn.execute(_CONFIRM, {"ids": list(ids), "now": now})


def scope_for(channel: str, recipient: str) -> str:
    """The budget's name for a channel's recipient (a member, a robot, a webhook)."""
    if "://" in recipient or "token" in recipient or len(recipient) > 200:
        recipient = "h" + hashlib.sha256(recipient.encode("utf-8")).hexdigest()[:32]
    return f"{channel}:{recipient}"


@dataclass(frozen=True, slots=True)
class Grant:
    """What ``reserve`` granted: reservation ids (fewer than wanted when the windows are full)
    and the earliest instant one more message could fit."""

    ids: list[int]
    next_free: datetime
    room_left: int = 0  # after this grant: 0 means the next message must wait for next_free


def _next_free(times: Sequence[datetime], windows: Windows, now: datetime) -> datetime:
    # A held reservation is expected to be answered about now (its `at` is the worst case): rows
    # waiting for a slot try again when the answered sends leave the window, not the worst cases.
    times = sorted(min(t, now) for t in times)
    at = now
    for limit, seconds in windows:
        inside = [t for t in times if t > now - timedelta(seconds=seconds)]
        if len(inside) >= limit:
            # The send that must leave this window before one more fits.
            at = max(at, inside[len(inside) - limit] + timedelta(seconds=seconds))
    return at


def _room(times: Sequence[datetime], windows: Windows, now: datetime) -> int:
    return min((max(0, limit - sum(1 for t in times if t > now - timedelta(seconds=seconds)))
                for limit, seconds in windows), default=0)


class SendBudget:
    def __init__(self, engine: AsyncEngine, holder: str = "") -> None:
        self.engine = engine
        self.holder = holder[:128]
        dialect_insert = insert_for(engine.dialect.name)
        stmt = dialect_insert(_SCOPES).values(scope=bindparam("scope"))
        # DO UPDATE (not DO NOTHING) so the statement locks an existing row: every reservation for
        # the scope queues behind it until the transaction ends.
        self._lock = stmt.on_conflict_do_update(index_elements=["scope"], set_={"scope": stmt.excluded.scope})

    async def reserve(self, scope: str, want: int, windows: Windows, now: datetime, *,
                      hold: timedelta = timedelta(seconds=30)) -> Grant:
        """Up to ``want`` reservations for messages sent now (one transaction)."""
        async with self.engine.begin() as conn:
            return await self.reserve_in(conn, scope, want, windows, now, hold=hold)

    async def reserve_in(self, conn: AsyncConnection, scope: str, want: int, windows: Windows, now: datetime, *,
                         hold: timedelta = timedelta(seconds=30)) -> Grant:
        await conn.execute(self._lock, {"scope": scope})
        longest = max((s for _, s in windows), default=0.0)
        await conn.execute(_FORGET, {"scope": scope, "horizon": now - timedelta(seconds=longest)})
        times = list((await conn.execute(_WINDOW, {"scope": scope,
                                                   "since": now - timedelta(seconds=longest)})).scalars())
        room = _room(times, windows, now)
        n = min(max(0, want), room)
        ids: list[int] = []
        if n:
            at = now + hold
            rows = [dict(scope=scope, at=at, state="held", holder=self.holder) for _ in range(n)]
            ids = [r.id for r in (await conn.execute(_ADD.returning(_r.id), rows)).all()]
            times = sorted([*times, *([at] * n)])
        return Grant(ids, _next_free(times, windows, now), room - n)

    async def confirm(self, ids: Iterable[int], now: datetime) -> None:
        """The platform answered (or may have got the message): it counts from ``now``."""
        ids = list(ids)
        if not ids:
            return
        async with self.engine.begin() as conn:
            await confirm_in(conn, ids, now)

    async def release(self, ids: Iterable[int]) -> None:
        """Reservations not used, or for messages that never reached the platform."""
        ids = list(ids)
        if not ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(_RELEASE, {"ids": ids})

    async def in_window(self, scope: str, now: datetime, seconds: float) -> int:
        """How many messages (sent or in flight) count inside the last ``seconds`` (tests, ops)."""
        async with self.engine.connect() as conn:
            return len((await conn.execute(_WINDOW, {"scope": scope,
                                                     "since": now - timedelta(seconds=seconds)})).all())


__all__ = ["SendBudget", "Grant", "Windows", "scope_for", "confirm_in"]
