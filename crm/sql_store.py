"""SqlCRMStore: the CRMStore protocol on SQLAlchemy (SQLite through aiosqlite, or PostgreSQL)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy import String, bindparam, func, insert, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from store import dto
from store.db import session_factory
from store.fields import REP_STATUSES, parse_amount
from identity.customers import customer_dto, survivor
from identity.normalize import normalize_email, normalize_phone
from store.models import AuditEntry, Customer, Identity, Lead, Rep, Team
from store.rows import lead_dto, rep_dto, team_dto
from store.captures import watches
from leadbot.clock import Clock, SystemClock

LEAD_TEXT_FIELDS = ("source_ref", "campaign", "name", "phone", "email", "company", "title", "region",
                    "city", "product_line", "language", "note")
STRONG_KINDS = ("phone", "email", "unionid", "external_userid", "dingtalk_id", "id_number")


def _column_limit(model: type, name: str) -> int | None:
    col_type = model.__table__.c[name].type
    return col_type.length if isinstance(col_type, String) else None


# Intake runs Core statements built once on its session's connection: per lead, the ORM's unit of
# work and rebuilding statements cost more CPU than the database spends storing it.
_leads = Lead.__table__
_LEAD_BY_INTAKE_KEY = select(_leads).where(_leads.c.intake_key == bindparam("key"))
_INSERT_LEAD = insert(_leads).returning(_leads.c.id)
_INSERT_AUDIT = insert(AuditEntry.__table__)
# The reads every new lead's card makes (lead, owner with team name, customer with identities),
# built once; rows map to the DTOs as the ORM objects did.
_LEAD_BY_ID = select(_leads).where(_leads.c.id == bindparam("id"))
_REP_WITH_TEAM = (select(Rep.__table__, Team.name.label("team_name"))
                  .outerjoin(Team, Team.id == Rep.team_id).where(Rep.id == bindparam("id")))
_CUSTOMER_BY_ID = select(Customer.__table__).where(Customer.id == bindparam("id"))
_IDENTITIES_OF = select(Identity.__table__).where(Identity.customer_id == bindparam("id")).order_by(Identity.id)
_LEAD_TEXT_LIMITS = {name: _column_limit(Lead, name) for name in LEAD_TEXT_FIELDS}
# A new lead's INSERT names every column, the ones it does not set at their defaults: one compiled
# statement for any mix of fields, and the returned dto is what was written (extra and flags, whose
# defaults are callables, are always set).
_NEW_LEAD = {c.name: c.default.arg if c.default is not None else None for c in _leads.c
             if not c.primary_key and not (c.default is not None and c.default.is_callable)}
_LEAD_DTO_FIELDS = tuple(f.name for f in dataclasses.fields(dto.Lead) if f.name not in ("id", "extra", "flags"))


def _written_lead(lead_id: int, row: Mapping[str, Any]) -> dto.Lead:
    """The dto of a lead just inserted as row: only its id came from the database."""
    return dto.Lead(id=lead_id, extra=dict(row["extra"]), flags=tuple(row["flags"]),
                    **{name: row[name] for name in _LEAD_DTO_FIELDS})


async def _add_audit(session: AsyncSession, conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    """An audit row in session's transaction. When CRM webhooks are on (crm_bridge.capture
    turns the audit rows it sees flushed into change events), through the ORM; else a Core INSERT
    on conn, the session's connection, without a unit of work."""
    if session.bind is None or watches(session.bind):
        session.add(AuditEntry(**values))
    else:
        await conn.execute(_INSERT_AUDIT, values)


class SqlCRMStore:
    def __init__(self, engine: AsyncEngine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(engine)

    async def ping(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    # ---- leads -------------------------------------------------------------------------------

    async def create_lead(self, lead: dto.LeadInput) -> tuple[dto.Lead, bool]:
        try:
            async with self.sessions() as session, session.begin():
                conn = await session.connection()
                if lead.intake_key:
                    existing = await self._lead_by_intake_key(conn, lead.intake_key)
                    if existing:
                        return existing, False
                now = self.clock.now()
                values, extra, flags = _lead_values(lead)
                customer_id = (await self._survivor(conn, lead.customer_id) if lead.customer_id
                               else await self._link_customer(conn, values, now))
                source_channel = (lead.source_channel or "api")[:64]
                row = {**_NEW_LEAD, **values, "intake_key": lead.intake_key, "customer_id": customer_id,
                       "source_channel": source_channel, "source": lead.source, "extra": extra, "flags": flags,
                       "status": "new",
                       "created_at": now, "updated_at": now, "last_activity_at": now}
                lead_id = (await conn.execute(_INSERT_LEAD, row)).scalar_one()
                await _add_audit(session, conn, {"at": now, "actor": lead.actor, "action": "lead.created",
                                                 "subject_type": "lead", "subject_id": str(lead_id),
                                                 "data": {"channel": source_channel, "flags": flags}})
            return _written_lead(lead_id, row), True
        except IntegrityError:
            if not lead.intake_key:
                raise
        # Lost a race with a concurrent resend of the same key: answer with the winner's lead.
        async with self.engine.connect() as conn:
            existing = await self._lead_by_intake_key(conn, lead.intake_key)
        if existing is None:
            raise RuntimeError("lead vanished after an idempotency conflict")
        return existing, False

    async def _lead_by_intake_key(self, conn: AsyncConnection, key: str) -> dto.Lead | None:
        row = (await conn.execute(_LEAD_BY_INTAKE_KEY, {"key": key})).one_or_none()
        return lead_dto(row) if row else None

    async def _link_customer(self, conn: AsyncConnection, values: Mapping[str, Any], now: Any) -> int:
        """The customer this lead belongs to (identity resolution: identity.service);
        created when no strong identifier names one."""
        from identity.service import link_lead_customer

        return await link_lead_customer(conn, values, now)

    async def _survivor(self, conn: AsyncConnection, customer_id: int) -> int:
        """Follows merge tombstones to the customer that lives on."""
        return await survivor(conn, customer_id)

    async def get_lead(self, lead_id: int) -> dto.Lead | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(_LEAD_BY_ID, {"id": lead_id})).one_or_none()
        return lead_dto(row) if row else None

    async def list_leads(self, *, owner_id: int | None = None, status: str | None = None,
                         limit: int = 50) -> Sequence[dto.Lead]:
        query = select(Lead).order_by(Lead.id.desc()).limit(limit)
        if owner_id is not None:
            query = query.where(Lead.owner_id == owner_id)
        if status is not None:
            query = query.where(Lead.status == status)
        async with self.sessions() as session:
            return [lead_dto(r) for r in (await session.execute(query)).scalars()]

    async def search_leads(self, text_query: str, limit: int = 10) -> Sequence[dto.Lead]:
        text_query = text_query.strip()
        if not text_query:
            return []
        conditions = [Lead.name.contains(text_query), Lead.company.contains(text_query)]
        digits = re.sub(r"\D", "", text_query)
        if len(digits) >= 4:
            conditions.append(func.replace(func.replace(Lead.phone, "-", ""), " ", "").contains(digits))
        query = select(Lead).where(or_(*conditions)).order_by(Lead.id.desc()).limit(limit)
        async with self.sessions() as session:
            return [lead_dto(r) for r in (await session.execute(query)).scalars()]

    # ---- customers, reps, teams --------------------------------------------------------------

    async def get_customer(self, customer_id: int) -> dto.Customer | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(_CUSTOMER_BY_ID, {"id": customer_id})).one_or_none()
            if row is None:
                return None
            ids = (await conn.execute(_IDENTITIES_OF, {"id": customer_id})).all()
        return customer_dto(row, ids)

    async def get_rep(self, rep_id: int) -> dto.Rep | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(_REP_WITH_TEAM, {"id": rep_id})).one_or_none()
        return rep_dto(row, row.team_name or "") if row else None

    async def rep_by_platform_id(self, platform: str, user_id: str) -> dto.Rep | None:
        column = {"wecom": Rep.wecom_userid, "dingtalk": Rep.dingtalk_userid}.get(platform)
        if column is None or not user_id:
            return None
        async with self.sessions() as session:
            row = (await session.execute(select(Rep).where(column == user_id))).scalar_one_or_none()
            if row is None:
                return None
            team = await session.get(Team, row.team_id) if row.team_id else None
            return rep_dto(row, team.name if team else "")

    async def list_reps(self, *, team_id: int | None = None, status: str | None = None) -> Sequence[dto.Rep]:
        query = select(Rep, Team.name).outerjoin(Team, Team.id == Rep.team_id).order_by(Rep.id)
        if team_id is not None:
            query = query.where(Rep.team_id == team_id)
        if status is not None:
            query = query.where(Rep.status == status)
        async with self.sessions() as session:
            return [rep_dto(r, name or "") for r, name in (await session.execute(query)).all()]

    async def rep_by_external_id(self, external_id: str) -> dto.Rep | None:
        async with self.sessions() as session:
            rep_id = (await session.execute(select(Rep.id).where(Rep.external_id == external_id))).scalar_one_or_none()
        # Outside the first session: SQLite runs on one pooled connection.
        return await self.get_rep(rep_id) if rep_id else None

    async def set_rep_status(self, rep_id: int, status: str, actor: str) -> bool:
        if status not in REP_STATUSES:
            raise ValueError(f"status must be one of {', '.join(REP_STATUSES)}")
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            row = await session.get(Rep, rep_id)
            if row is None:
                return False
            previous, row.status, row.updated_at = row.status, status, now
            session.add(AuditEntry(at=now, actor=actor, action="rep.status", subject_type="rep",
                                   subject_id=str(rep_id), data={"from": previous, "to": status}))
            return True

    async def get_team(self, team_id: int) -> dto.Team | None:
        async with self.sessions() as session:
            row = await session.get(Team, team_id)
            return team_dto(row) if row else None

    async def list_teams(self) -> Sequence[dto.Team]:
        async with self.sessions() as session:
            return [team_dto(r) for r in (await session.execute(select(Team).order_by(Team.id))).scalars()]

    # ---- imports -----------------------------------------------------------------------------

    async def import_reps(self, rows: Sequence[Mapping[str, str]], *,
                          progress: Callable[[int], None] | None = None) -> dto.ImportSummary:
        from crm.importing import import_reps

        return await import_reps(self, rows, progress=progress)

    async def import_customers(self, rows: Sequence[Mapping[str, str]], *,
                               progress: Callable[[int], None] | None = None) -> dto.ImportSummary:
        from crm.importing import import_customers

        return await import_customers(self, rows, progress=progress)

    # ---- audit -------------------------------------------------------------------------------

    async def audit(self, actor: str, action: str, subject_type: str = "", subject_id: str = "",
                    data: Mapping[str, Any] | None = None) -> None:
        async with self.sessions() as session, session.begin():
            session.add(AuditEntry(at=self.clock.now(), actor=actor, action=action,
                                   subject_type=subject_type, subject_id=subject_id, data=dict(data or {})))


def _lead_values(lead: dto.LeadInput) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(column values, extra, flags) of a submitted lead: text cut to its column (the whole value
    kept in extra), an amount that does not parse and the rest of the fields kept in extra."""
    fields = dict(lead.fields)
    extra = dict(lead.extra)
    flags: list[str] = []
    values: dict[str, Any] = {}
    for name in LEAD_TEXT_FIELDS:
        raw = fields.get(name)
        if raw is None:
            continue
        value = raw if isinstance(raw, str) else str(raw)
        limit = _LEAD_TEXT_LIMITS[name]
        if limit and len(value) > limit:
            # Keep the whole value: the column gets a prefix, extra the original.
            keep_in_extra(extra, name, value)
            flags.append(f"{name}_truncated")
            value = value[:limit]
        values[name] = value
    amount = fields.get("amount")
    if amount not in (None, ""):
        parsed = parse_amount(amount)
        if parsed is None:
            keep_in_extra(extra, "amount", amount)
            flags.append("amount_invalid")
        else:
            values["amount"] = parsed
    if values.get("phone") and not normalize_phone(values["phone"]):
        flags.append("phone_invalid")
    if values.get("email") and not normalize_email(values["email"]):
        flags.append("email_invalid")
    for known in fields:
        if known not in LEAD_TEXT_FIELDS and known != "amount":
            keep_in_extra(extra, known, fields[known])
    return values, extra, flags


def keep_in_extra(extra: dict[str, Any], key: str, value: Any) -> str:
    """Stores value in extra under key, or, when the source already used that key for something
    else, under the first free "key~2", "key~3"...: neither value is lost. Returns the key used."""
    candidate, n = key, 1
    while candidate in extra and extra[candidate] != value:
        n += 1
        candidate = f"{key}~{n}"
    extra[candidate] = value
    return candidate
