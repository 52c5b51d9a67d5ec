"""The durable outbox: every outbound message is a row under a UNIQUE idempotency key.

States: ``pending`` (waiting for ``next_attempt_at``) -> ``sending`` (leased by a worker until
``next_attempt_at``, which doubles as the lease expiry) -> ``sent`` | ``pending`` (retry) |
``dead`` | ``rolled_up`` (folded into a digest row named in ``result.rolled_into``) |
``fallback`` (replaced by another row, named in ``result.superseded_by``: the text copy of a card
the client cannot show, or the same message on the rep's other platform) | ``skipped`` (a card
update the platform refused because the copy can no longer be updated: the copy is left as it
was, which is what the platform allows, not a delivery failure).

A leased row whose worker crashed comes back by itself when the lease expires, and is then
handed out with ``redelivery=True``, as is a row whose earlier attempt failed (a timeout may
have reached the platform); a deferral gives its attempt back and does not count. Every state
change after the lease is fenced on ``(state='sending', attempts=<the lease's attempt>)``, so a
worker that lost its lease cannot overwrite the outcome of the worker that took the row over.

On PostgreSQL rows are leased with ``FOR UPDATE SKIP LOCKED``, so several processes share one
outbox without handing the same row to two of them; SQLite has one process and one connection.

The delivery path (leasing, the tick's reads, every state change after the lease, enqueueing)
runs prebuilt Core statements on connections, not ORM sessions: it runs for every message, and
building a statement (and its cache key) and a session each time cost more event-loop CPU than
the database's answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Callable, Collection, Iterable, Mapping, Sequence, cast

from sqlalchemy import Integer, Select, Table, Update, bindparam, delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from store.db import insert_for, session_factory
from store.fields import DELIVERY_PROFILES
from store.models import CardCopy, KeyValue, OutboxItem, Rep
from store.send_budget import confirm_in
from leadbot.clock import Clock, SystemClock, utc


OUTBOX_STATES = ("pending", "sending", "sent", "dead", "rolled_up", "fallback", "skipped")
# WeCom: a response_code updates a card once and only within 72 h (wecom/94888, wecom/94945;
# reference/conformance.md W1).
RESPONSE_CODE_TTL = timedelta(hours=72)
DEAD_INCIDENT_KEY = "outbox.dead_incident"


@dataclass(frozen=True, slots=True)
class NewOutboxItem:
    """One message to enqueue. ``key`` is deterministic (``f"lead:{id}:offer:{rep}"``), so the
    same cause enqueued twice is stored once."""

    key: str
    channel: str  # wecom | dingtalk | wecom_robot | dingtalk_robot
    kind: str  # card | text | card_update | robot
    recipient: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    rep_id: int | None = None
    lead_id: int | None = None
    urgent: bool = False
    not_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    idempotency_key: str
    channel: str
    kind: str
    recipient: str
    rep_id: int | None
    lead_id: int | None
    payload: Mapping[str, Any]
    state: str
    attempts: int
    urgent: bool
    next_attempt_at: datetime
    last_error: str
    result: Mapping[str, Any]
    created_at: datetime
    sent_at: datetime | None
    # True when the row came back after an expired lease: the platform may already have it.
    redelivery: bool = False


@dataclass(frozen=True, slots=True)
class RepContact:
    id: int
    name: str
    role: str
    status: str
    delivery: str
    wecom_userid: str | None
    dingtalk_userid: str | None

    def userid_on(self, channel: str) -> str | None:
        return {"wecom": self.wecom_userid, "dingtalk": self.dingtalk_userid}.get(channel)


@dataclass(frozen=True, slots=True)
class CardRecord:
    """What is needed later to update or revoke a delivered card (the ``cards`` table)."""

    card_kind: str
    platform: str
    recipient: str
    card_ref: str  # WeCom task_id | DingTalk outTrackId
    lead_id: int | None = None
    msgid: str = ""
    response_code: str = ""
    id: int | None = None
    code_issued_at: datetime | None = None
    code_spent_at: datetime | None = None
    shown: str = ""  # digest of what the copy shows (bot.journey.flow.headline)
    meta: Mapping[str, Any] = field(default_factory=dict)  # the view's own facts

    def usable_code(self, now: datetime) -> str:
        """The copy's WeCom response_code when it may still update the copy: unspent and younger
        than 72 h (a code whose age is unknown counts as too old)."""
        if not self.response_code or self.code_spent_at is not None or self.code_issued_at is None:
            return ""
        return self.response_code if now - self.code_issued_at < RESPONSE_CODE_TTL else ""


@dataclass(frozen=True, slots=True)
class DueBatch:
    """One delivery tick's reads: the rows it leased, their reps, and the recent sends (by every
    process) to their recipients on the throttled channels."""

    entries: list[OutboxEntry]
    reps: dict[int, RepContact]
    sends: list[tuple[str, str, datetime]]


class _LeaseLost(Exception):
    """Rolls a transaction back when a row's lease went to another worker meanwhile."""


def _entry(row: Any, redelivery: bool = False) -> OutboxEntry:
    return OutboxEntry(
        id=row.id, idempotency_key=row.idempotency_key, channel=row.channel, kind=row.kind,
        recipient=row.recipient, rep_id=row.rep_id, lead_id=row.lead_id, payload=dict(row.payload or {}),
        state=row.state, attempts=row.attempts, urgent=bool(row.urgent), next_attempt_at=row.next_attempt_at,
        last_error=row.last_error, result=dict(row.result or {}), created_at=row.created_at,
        sent_at=row.sent_at, redelivery=redelivery)


def _contact(row: Any) -> RepContact:
    return RepContact(id=row.id, name=row.name, role=row.role, status=row.status, delivery=row.delivery,
                      wecom_userid=row.wecom_userid, dingtalk_userid=row.dingtalk_userid)


def _dialect(conn: AsyncConnection | AsyncSession) -> str:
    if isinstance(conn, AsyncSession):
        return conn.get_bind().dialect.name
    return conn.dialect.name


def row_values(item: NewOutboxItem, now: datetime, *, state: str = "pending", attempts: int = 0,
            next_at: datetime | None = None) -> dict[str, Any]:
    return dict(idempotency_key=item.key[:400], channel=item.channel[:32], kind=item.kind[:32],
                recipient=item.recipient[:256], rep_id=item.rep_id, lead_id=item.lead_id,
                payload=dict(item.payload), state=state, attempts=attempts, urgent=item.urgent,
                next_attempt_at=next_at or item.not_before or now, last_error="", result={},
                created_at=now, sent_at=None)


# The models' own tables, so their TypeDecorators (UTCDateTime) and JSON columns apply. The
# statements below are built once: a prebuilt statement memoizes its cache key, so running it
# skips construction and cache-key generation. Where a statement has no values(), its SET or
# VALUES columns come from the keys of the parameters it is executed with. IN lists of constants
# are literal() binds, not an expanding bindparam, which would be re-rendered on every execution.
_OUTBOX = cast(Table, OutboxItem.__table__)
_CARDS = cast(Table, CardCopy.__table__)
_REPS = cast(Table, Rep.__table__)
_o = _OUTBOX.c

_CONTACTS = select(_REPS.c.id, _REPS.c.name, _REPS.c.role, _REPS.c.status, _REPS.c.delivery,
                   _REPS.c.wecom_userid, _REPS.c.dingtalk_userid)
_CONTACTS_BY_ID = _CONTACTS.where(_REPS.c.id.in_(bindparam("ids", expanding=True)))
_ADMINS = _CONTACTS.where(_REPS.c.role == "admin", _REPS.c.status == "active").order_by(_REPS.c.id)

_LEASE_UNTIL = bindparam("lease_until", type_=_o.next_attempt_at.type)
_LEASE = (update(_OUTBOX).where(_o.id.in_(bindparam("ids", expanding=True)))
          .values(state="sending", attempts=_o.attempts + 1, next_attempt_at=_LEASE_UNTIL))
# Every state change after the lease is fenced on the lease's attempt (parameters from _fence).
_FENCED = update(_OUTBOX).where(_o.id == bindparam("b_id"), _o.state == "sending",
                                _o.attempts == bindparam("b_attempts"))
_GIVE_BACK = _FENCED.values(attempts=_o.attempts - 1)  # a deferral does not spend an attempt
_RENEW = (update(_OUTBOX).where(_o.id.in_(bindparam("ids", expanding=True)), _o.state == "sending",
                                _o.attempts == bindparam("b_attempts"))
          .values(next_attempt_at=_LEASE_UNTIL).returning(_o.id))
_ROLL_UP = update(_OUTBOX).where(_o.id.in_(bindparam("ids", expanding=True)), _o.state == "sending")
_ADD_CARD = insert(_CARDS)


@lru_cache(maxsize=None)
def _due(by_channel: bool, by_recipient: bool) -> Select[Any]:
    """Due rows (pending and due, or leased and expired): urgent first, then by due time."""
    query = (select(_OUTBOX)
             .where(_o.state.in_([literal("pending"), literal("sending")]), _o.next_attempt_at <= bindparam("now"))
             .order_by(_o.urgent.desc(), _o.next_attempt_at, _o.id)
             .limit(bindparam("limit", type_=Integer)))
    # Not named after columns: in _lease_pg's UPDATE those names would mean SET.
    if by_channel:
        query = query.where(_o.channel == bindparam("b_channel"))
    if by_recipient:
        query = query.where(_o.recipient == bindparam("b_recipient"))
    return query


@lru_cache(maxsize=None)
def _lease_pg(by_channel: bool, by_recipient: bool) -> Update:
    """PostgreSQL leases in one statement: the CTE locks the due rows no other process holds,
    the UPDATE leases them and returns them with the state and due time they had before."""
    picked = (_due(by_channel, by_recipient).with_only_columns(_o.id, _o.state, _o.next_attempt_at)
              .with_for_update(skip_locked=True).cte("picked"))
    return (update(_OUTBOX).where(_o.id == picked.c.id)
            .values(state="sending", attempts=_o.attempts + 1, next_attempt_at=_LEASE_UNTIL)
            .returning(*_OUTBOX.c, picked.c.state.label("was_state"), picked.c.next_attempt_at.label("was_due")))


@lru_cache(maxsize=None)
def _recent_sends(by_recipient: bool, uncounted_kinds: tuple[str, ...]) -> Select[Any]:
    query = (select(_o.channel, _o.recipient, _o.sent_at)
             .where(_o.state == "sent", _o.sent_at >= bindparam("since")).order_by(_o.sent_at))
    if by_recipient:
        query = query.where(_o.recipient.in_(bindparam("recipients", expanding=True)))
    if uncounted_kinds:
        query = query.where(_o.kind.not_in([literal(k) for k in uncounted_kinds]))
    return query


@lru_cache(maxsize=None)
def _enqueue(dialect: str) -> Any:
    """Insert-or-ignore under the idempotency key; returns (key, id) of each row it inserted."""
    return (insert_for(dialect)(_OUTBOX).on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(_o.idempotency_key, _o.id))


def _redelivery(state: str, attempts: int) -> bool:
    """Whether a due row (its state and attempts before the lease) may have reached the platform
    already: an expired lease, or an earlier attempt that ended without an answer (timed out,
    connection dropped)."""
    return state == "sending" or attempts > 0


async def _lease_in_one(conn: AsyncConnection, filters: tuple[bool, bool], params: dict[str, Any]
                        ) -> list[OutboxEntry]:
    """PostgreSQL: one UPDATE ... RETURNING (see _lease_pg)."""
    rows = (await conn.execute(_lease_pg(*filters), params)).all()
    rows.sort(key=lambda r: (not r.urgent, r.was_due, r.id))  # RETURNING keeps no order: _due's again
    return [_entry(r, redelivery=_redelivery(r.was_state, r.attempts - 1)) for r in rows]


async def _lease_in_two(conn: AsyncConnection, filters: tuple[bool, bool], params: dict[str, Any]
                        ) -> list[OutboxEntry]:
    """SQLite: SELECT, then UPDATE what it found, in the caller's transaction. One UPDATE ...
    RETURNING would do on SQLite too, but its RETURNING sees only the updated row, not the
    state and due time before the lease that redelivery and the order need."""
    rows = (await conn.execute(_due(*filters), params)).all()
    if not rows:
        return []
    lease_until = params["lease_until"]
    await conn.execute(_LEASE, {"ids": [r.id for r in rows], "lease_until": lease_until})
    return [_leased(_entry(r, redelivery=_redelivery(r.state, r.attempts)), lease_until) for r in rows]


def _fence(entry: OutboxEntry) -> dict[str, Any]:
    return {"b_id": entry.id, "b_attempts": entry.attempts}


def _rep_ids(rep_ids: Iterable[int | None]) -> list[int]:
    return sorted({i for i in rep_ids if i is not None})


async def _contacts(conn: AsyncConnection, ids: list[int]) -> dict[int, RepContact]:
    return {r.id: _contact(r) for r in await conn.execute(_CONTACTS_BY_ID, {"ids": ids})}


async def _sends(conn: AsyncConnection, since: datetime, wanted: set[tuple[str, str]] | None,
                 uncounted_kinds: Sequence[str]) -> list[tuple[str, str, datetime]]:
    """See OutboxRepo.recent_sends; ``wanted`` None means every recipient."""
    params: dict[str, Any] = {"since": since}
    if wanted is not None:
        params["recipients"] = sorted({r for _, r in wanted})
    rows = await conn.execute(_recent_sends(wanted is not None, tuple(uncounted_kinds)), params)
    return [(c, r, t) for c, r, t in rows if wanted is None or (c, r) in wanted]


async def enqueue_in(conn: AsyncConnection | AsyncSession, item: NewOutboxItem, now: datetime) -> int | None:
    """Enqueues inside the caller's transaction (a session or a connection), so the message
    commits or rolls back with the change that caused it. Returns the new row id, or None when
    the key was already there (insert-or-ignore)."""
    row = (await conn.execute(_enqueue(_dialect(conn)), row_values(item, now))).first()
    return row.id if row is not None else None


def digest_key(channel: str, recipient: str, ids: Iterable[int]) -> str:
    digest = hashlib.sha1(",".join(str(i) for i in sorted(ids)).encode()).hexdigest()[:16]
    return f"digest:{channel}:{recipient}:{digest}"


class OutboxRepo:
    def __init__(self, engine: AsyncEngine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self.sessions = session_factory(engine)
        self.is_pg = engine.dialect.name == "postgresql"
        self._insert = insert_for(engine.dialect.name)

    # ---- enqueue -----------------------------------------------------------------------------

    async def enqueue(self, item: NewOutboxItem, conn: AsyncConnection | AsyncSession | None = None) -> int | None:
        """Same transaction as the caller's change when ``conn`` is given, else one of its own."""
        if conn is not None:
            return await enqueue_in(conn, item, self.clock.now())
        async with self.engine.begin() as own:
            return await enqueue_in(own, item, self.clock.now())

    async def enqueue_many(self, items: Sequence[NewOutboxItem],
                           conn: AsyncConnection | AsyncSession | None = None) -> list[int | None]:
        """Insert-or-ignore, sent as multi-row statements (SQLAlchemy's insertmanyvalues); ids in
        input order (None = already there)."""
        if not items:
            return []
        if conn is None:
            async with self.engine.begin() as own:
                return await self.enqueue_many(items, own)
        now = self.clock.now()
        rows = await conn.execute(_enqueue(_dialect(conn)), [row_values(item, now) for item in items])
        ids: dict[str, int] = {k: v for k, v in rows}
        seen: set[str] = set()
        out: list[int | None] = []
        for item in items:
            key = item.key[:400]
            out.append(ids.get(key) if key not in seen else None)
            seen.add(key)
        return out

    # ---- leasing -----------------------------------------------------------------------------

    async def take_due(self, limit: int = 100, now: datetime | None = None, *, lease_seconds: float = 60.0,
                       channel: str | None = None, recipient: str | None = None) -> list[OutboxEntry]:
        """Leases up to ``limit`` due rows (pending and due, or leased and expired): urgent first,
        then oldest. A leased row is ``sending`` until ``next_attempt_at`` = now + lease."""
        async with self.engine.begin() as conn:
            return await self._lease(conn, limit, now or self.clock.now(), lease_seconds, channel, recipient)

    async def take_batch(self, limit: int, now: datetime, *, lease_seconds: float, sends_since: datetime,
                         windowed_channels: Collection[str], uncounted_kinds: Sequence[str] = ()) -> DueBatch:
        """A delivery tick's reads in one transaction: ``take_due``, the leased rows' rep contacts,
        and ``recent_sends`` since ``sends_since`` to their recipients on ``windowed_channels``."""
        async with self.engine.begin() as conn:
            entries = await self._lease(conn, limit, now, lease_seconds)
            if not entries:
                return DueBatch([], {}, [])
            rep_ids = _rep_ids(e.rep_id for e in entries)
            reps = await _contacts(conn, rep_ids) if rep_ids else {}
            keys = {(e.channel, e.recipient) for e in entries if e.channel in windowed_channels}
            sends = await _sends(conn, sends_since, keys, uncounted_kinds) if keys else []
        return DueBatch(entries, reps, sends)

    async def _lease(self, conn: AsyncConnection, limit: int, now: datetime, lease_seconds: float,
                     channel: str | None = None, recipient: str | None = None) -> list[OutboxEntry]:
        filters = (channel is not None, recipient is not None)
        params: dict[str, Any] = {"now": now, "limit": limit, "lease_until": now + timedelta(seconds=lease_seconds)}
        if channel is not None:
            params["b_channel"] = channel
        if recipient is not None:
            params["b_recipient"] = recipient
        return await (_lease_in_one(conn, filters, params) if self.is_pg else _lease_in_two(conn, filters, params))

    async def mark_sent(self, entry: OutboxEntry, result: Mapping[str, Any], card: CardRecord | None = None, *,
                        reservation: int | None = None) -> bool:
        """Records the platform's ids and, for a card, the copy needed to update it later; the
        send's budget ``reservation`` (store.send_budget) counts from now, same transaction.
        False when the lease was lost (another worker owns the row now)."""
        now = self.clock.now()
        async with self.engine.begin() as conn:
            done = await conn.execute(_FENCED, {**_fence(entry), "state": "sent", "result": dict(result),
                                                "sent_at": now, "last_error": ""})
            if done.rowcount != 1:
                return False
            if reservation is not None:
                await confirm_in(conn, [reservation], now)
            if card is not None:
                await conn.execute(_ADD_CARD, dict(
                    lead_id=card.lead_id, card_kind=card.card_kind[:32], platform=card.platform[:16],
                    recipient=card.recipient[:256], card_ref=card.card_ref[:256], msgid=card.msgid[:128],
                    response_code=card.response_code[:256],
                    code_issued_at=now if card.response_code else None, code_spent_at=None,
                    shown=card.shown[:64], meta=dict(card.meta) or None,
                    state="open", created_at=now, updated_at=now))
        return True

    async def renew(self, leases: Mapping[int, int], lease_seconds: float) -> set[int]:
        """Extends the leases ``{row id: the lease's attempt}`` of rows this worker is still on
        (its heartbeat); returns the ids it still holds. A row missing was taken over after its
        lease ran out: its outcome is the new holder's (every write after the lease is fenced)."""
        if not leases:
            return set()
        by_attempt: dict[int, list[int]] = {}
        for row_id, attempts in leases.items():
            by_attempt.setdefault(attempts, []).append(row_id)
        until = self.clock.now() + timedelta(seconds=lease_seconds)
        held: set[int] = set()
        async with self.engine.begin() as conn:
            for attempts, ids in by_attempt.items():
                rows = await conn.execute(_RENEW, {"ids": sorted(ids), "b_attempts": attempts, "lease_until": until})
                held.update(r[0] for r in rows)
        return held

    async def mark_retry(self, entry: OutboxEntry, error: str, next_at: datetime) -> bool:
        async with self.engine.begin() as conn:
            done = await conn.execute(_FENCED, {**_fence(entry), "state": "pending", "last_error": error[:2000],
                                                "next_attempt_at": next_at})
            return done.rowcount == 1

    async def defer(self, entry: OutboxEntry, until: datetime, reason: str = "") -> bool:
        """Gives the lease back without spending an attempt (quiet hours, throttle window)."""
        async with self.engine.begin() as conn:
            values: dict[str, Any] = {**_fence(entry), "state": "pending", "next_attempt_at": until}
            if reason:
                values["last_error"] = reason[:2000]
            done = await conn.execute(_GIVE_BACK, values)
            return done.rowcount == 1

    async def supersede(self, entry: OutboxEntry, replacement: NewOutboxItem, error: str) -> bool:
        """Replaces a row that failed permanently by another one (text copy, other platform),
        in one transaction: the message is never in neither row."""
        now = self.clock.now()
        async with self.engine.begin() as conn:
            done = await conn.execute(_FENCED, {**_fence(entry), "state": "fallback", "last_error": error[:2000],
                                                "result": {"superseded_by": replacement.key}})
            if done.rowcount != 1:
                return False
            await enqueue_in(conn, replacement, now)
        return True

    async def roll_up(self, entries: Sequence[OutboxEntry], digest: NewOutboxItem, *,
                      lease_seconds: float = 60.0) -> OutboxEntry | None:
        """Folds leased rows into one digest row, created already leased by the caller. Returns
        the digest, or None (nothing changed) when any of the rows' leases was lost."""
        now = self.clock.now()
        ids = [e.id for e in entries]
        lease_until = now + timedelta(seconds=lease_seconds)
        try:
            async with self.engine.begin() as conn:
                created = (await conn.execute(
                    self._insert(_OUTBOX).on_conflict_do_nothing(index_elements=["idempotency_key"])
                    .returning(*_OUTBOX.c),
                    row_values(digest, now, state="sending", attempts=1, next_at=lease_until))).first()
                if created is None:
                    raise _LeaseLost
                done = await conn.execute(_ROLL_UP, {"ids": ids, "state": "rolled_up",
                                                     "result": {"rolled_into": digest.key}, "last_error": ""})
                if done.rowcount != len(ids):
                    raise _LeaseLost
                return _entry(created)
        except _LeaseLost:
            return None

    async def mark_dead(self, entry: OutboxEntry, error: str, *,
                        alerts: Callable[[str, Sequence[RepContact]], Sequence[NewOutboxItem]] | None = None,
                        incident_ttl: timedelta = timedelta(hours=24)) -> str | None:
        """Dead-letters the row. When ``alerts`` is given and no dead-letter incident is open,
        opens one and enqueues ``alerts(incident_id, admins)`` in the same transaction, so many
        dead messages raise one alert. Returns the new incident id, else None."""
        now = self.clock.now()
        async with self.engine.begin() as conn:
            done = await conn.execute(_FENCED, {**_fence(entry), "state": "dead", "last_error": error[:2000]})
            if done.rowcount != 1 or alerts is None:
                return None
            await conn.execute(delete(KeyValue).where(KeyValue.key == DEAD_INCIDENT_KEY, KeyValue.expires_at < now))
            incident = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{entry.id}"
            opened = (await conn.execute(
                self._insert(KeyValue).values(key=DEAD_INCIDENT_KEY, value=incident, expires_at=now + incident_ttl)
                .on_conflict_do_nothing(index_elements=["key"]).returning(KeyValue.key))).scalar_one_or_none()
            if opened is None:
                return None
            admins = (await conn.execute(_ADMINS)).all()
            for item in alerts(incident, [_contact(a) for a in admins]):
                await enqueue_in(conn, item, now)
            return incident

    async def requeue_dead(self, ids: Sequence[int] | None = None) -> int:
        """Gives dead rows another chance (operator action) and closes the open incident."""
        now = self.clock.now()
        async with self.engine.begin() as conn:
            stmt = update(OutboxItem).where(OutboxItem.state == "dead")
            if ids is not None:
                stmt = stmt.where(OutboxItem.id.in_(list(ids)))
            done = await conn.execute(stmt.values(state="pending", attempts=0, next_attempt_at=now))
            await conn.execute(delete(KeyValue).where(KeyValue.key == DEAD_INCIDENT_KEY))
            return done.rowcount

    # ---- reading -----------------------------------------------------------------------------

    async def get(self, entry_id: int) -> OutboxEntry | None:
        async with self.sessions() as session:
            row = await session.get(OutboxItem, entry_id)
            return _entry(row) if row else None

    async def get_by_key(self, key: str) -> OutboxEntry | None:
        async with self.sessions() as session:
            row = (await session.execute(select(OutboxItem).where(OutboxItem.idempotency_key == key))).scalar_one_or_none()
            return _entry(row) if row else None

    async def counts(self) -> dict[str, int]:
        async with self.sessions() as session:
            rows = (await session.execute(select(OutboxItem.state, func.count()).group_by(OutboxItem.state))).all()
            return {state: n for state, n in rows}

    async def held(self, reason: str) -> tuple[int, datetime | None, datetime | None]:
        """Pending rows given back with `reason` (quiet hours): how many, the oldest one's
        creation and the latest instant any of them is held until."""
        query = (select(func.count(), func.min(OutboxItem.created_at), func.max(OutboxItem.next_attempt_at))
                 .where(OutboxItem.state == "pending", OutboxItem.last_error == reason))
        async with self.sessions() as session:
            n, oldest, until = (await session.execute(query)).one()
        return int(n or 0), utc(oldest) if oldest else None, utc(until) if until else None

    async def list(self, states: Sequence[str] = ("pending", "sending"), limit: int = 50, *,
                   rep_id: int | None = None, lead_id: int | None = None) -> list[OutboxEntry]:
        query = select(OutboxItem).where(OutboxItem.state.in_(list(states))).order_by(OutboxItem.id).limit(limit)
        if rep_id is not None:
            query = query.where(OutboxItem.rep_id == rep_id)
        if lead_id is not None:
            query = query.where(OutboxItem.lead_id == lead_id)
        async with self.sessions() as session:
            return [_entry(r) for r in (await session.execute(query)).scalars()]

    async def recent_sends(self, since: datetime, *, recipients: Iterable[tuple[str, str]] | None = None,
                           uncounted_kinds: Sequence[str] = ()) -> list[tuple[str, str, datetime]]:
        """(channel, recipient, sent_at) of rows sent since then, by any process: seeds the
        per-recipient throttle at start (a restart does not forget the last hour's sends);
        ``take_batch`` reads the same for the recipients of each tick (other processes' sends
        count too)."""
        wanted = None if recipients is None else set(recipients)
        if wanted is not None and not wanted:
            return []
        async with self.engine.connect() as conn:
            return await _sends(conn, since, wanted, uncounted_kinds)

    async def mark_skipped(self, entry: OutboxEntry, error: str) -> bool:
        """A card update the platform refused because the copy cannot be updated any more."""
        async with self.engine.begin() as conn:
            done = await conn.execute(_FENCED, {**_fence(entry), "state": "skipped", "last_error": error[:2000],
                                                "result": {"skipped": True}})
            return done.rowcount == 1

    async def cards_for_lead(self, lead_id: int) -> list[CardRecord]:
        async with self.sessions() as session:
            rows = (await session.execute(select(CardCopy).where(CardCopy.lead_id == lead_id)
                                          .order_by(CardCopy.id))).scalars().all()
            return [_card_record(r) for r in rows]

    async def card_copy(self, platform: str, card_ref: str, recipient: str) -> CardRecord | None:
        """The delivered copy a tap came from (its card_ref and the tapper)."""
        async with self.sessions() as session:
            row = (await session.execute(select(CardCopy).where(
                CardCopy.platform == platform, CardCopy.card_ref == card_ref, CardCopy.recipient == recipient)
                .order_by(CardCopy.id.desc()).limit(1))).scalar_one_or_none()
            return _card_record(row) if row is not None else None

    async def take_code(self, card_id: int, code: str, now: datetime, shown: str | None = None) -> bool:
        """Spends the copy's response_code for one update, if it is still the copy's newest code,
        unspent and younger than 72 h: one conditional UPDATE, so two changes racing for the
        same copy never both use its code. ``shown`` records what the update will show."""
        values: dict[str, Any] = {"code_spent_at": now, "updated_at": now}
        if shown is not None:
            values["shown"] = shown[:64]
        async with self.engine.begin() as conn:
            done = await conn.execute(update(CardCopy).where(
                CardCopy.id == card_id, CardCopy.response_code == code, CardCopy.code_spent_at.is_(None),
                CardCopy.code_issued_at > now - RESPONSE_CODE_TTL).values(**values))
            return done.rowcount == 1

    async def set_shown(self, card_id: int, shown: str, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(CardCopy).where(CardCopy.id == card_id)
                               .values(shown=shown[:64], updated_at=now))

    async def spend_code(self, platform: str, card_ref: str, recipient: str, code: str, now: datetime) -> None:
        """The platform refused an update with this code: it is no use any more."""
        async with self.engine.begin() as conn:
            await conn.execute(update(CardCopy).where(
                CardCopy.platform == platform, CardCopy.card_ref == card_ref, CardCopy.recipient == recipient,
                CardCopy.response_code == code, CardCopy.code_spent_at.is_(None)).values(code_spent_at=now))

    # ---- reps: delivery profile and contacts -------------------------------------------------

    async def rep_contacts(self, rep_ids: Iterable[int]) -> dict[int, RepContact]:
        ids = _rep_ids(rep_ids)
        if not ids:
            return {}
        async with self.engine.connect() as conn:
            return await _contacts(conn, ids)

    async def set_delivery(self, rep_id: int, profile: str) -> bool:
        """The text commands 文本模式 / 卡片模式 land here. False when the rep is unknown."""
        if profile not in DELIVERY_PROFILES:
            raise ValueError(f"delivery profile must be one of {', '.join(DELIVERY_PROFILES)}")
        async with self.engine.begin() as conn:
            done = await conn.execute(update(Rep).where(Rep.id == rep_id)
                                      .values(delivery=profile, updated_at=self.clock.now()))
            return done.rowcount == 1

    async def switch_auto_to_both(self, rep_id: int) -> bool:
        """`auto` becomes `both` once the platform says a card could not be shown; an explicit
        choice of the rep (card/text/both) is never overridden."""
        async with self.engine.begin() as conn:
            done = await conn.execute(update(Rep).where(Rep.id == rep_id, Rep.delivery == "auto")
                                      .values(delivery="both", updated_at=self.clock.now()))
            return done.rowcount == 1


def _card_record(r: Any) -> CardRecord:
    return CardRecord(card_kind=r.card_kind, platform=r.platform, recipient=r.recipient, card_ref=r.card_ref,
                      lead_id=r.lead_id, msgid=r.msgid, response_code=r.response_code, id=r.id,
                      code_issued_at=r.code_issued_at, code_spent_at=r.code_spent_at, shown=r.shown or "",
                      meta=dict(r.meta or {}))


def _leased(e: OutboxEntry, lease_until: datetime) -> OutboxEntry:
    return OutboxEntry(
        id=e.id, idempotency_key=e.idempotency_key, channel=e.channel, kind=e.kind, recipient=e.recipient,
        rep_id=e.rep_id, lead_id=e.lead_id, payload=e.payload, state="sending", attempts=e.attempts + 1,
        urgent=e.urgent, next_attempt_at=lease_until, last_error=e.last_error, result=e.result,
        created_at=e.created_at, sent_at=e.sent_at, redelivery=e.redelivery)


async def remember_response_code(engine: AsyncEngine, card_ref: str, recipient: str, response_code: str,
                                 now: datetime) -> bool:
    """WeCom response codes are single-use: every tap brings a fresh one for that copy (valid
    72 h from now), which the next update of that copy must use."""
    if not card_ref or not response_code:
        return False
    async with engine.begin() as conn:
        done = await conn.execute(update(CardCopy).where(CardCopy.card_ref == card_ref,
                                                         CardCopy.recipient == recipient)
                                  .values(response_code=response_code, code_issued_at=now, code_spent_at=None,
                                          updated_at=now))
        return done.rowcount > 0
