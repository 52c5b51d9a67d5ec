"""The CRM pushes its truth: upserts by the CRM's own ids, and explicit commands.

Rules (docs/crm_bridge.md):
- Field ownership (``[crm_bridge] field_owners``): on an update, a field the leadbot side owns is
  not written and is reported in ``ignored``; a field owned by the CRM or shared is written.
  A create takes every field (there is nothing to conflict with yet).
- Versions: ``If-Match`` (or ``version`` in the body) must equal the stored version, else 409
  with the current version and entity. Without one, the write is still atomic: it applies
  against the version it read, and retries on a concurrent change (never a lost update).
- Idempotent: a write that changes nothing bumps no version and writes no audit row.
- Every change is audited with ``origin: "crm"`` and runs inside ``crm_origin()``: no change
  event is echoed back to the CRM.
- Commands (stage, owner, do-not-contact) are explicit intent and may change leadbot-owned fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from store.db import session_factory
from identity.normalize import normalize_identity
from store.lead_status import WORKING
from store.models import AuditEntry, Customer, Lead, Rep, StageHistory
from store.fields import parse_amount
from crm_bridge.capture import crm_origin, customer_snapshot, lead_snapshot
from leadbot.clock import Clock
from leadbot.masking import mask_phone

CUSTOMER_FIELDS = ("name", "company", "title", "city", "address", "phone", "email", "owner",
                   "do_not_contact", "attributes")
LEAD_FIELDS = ("name", "phone", "email", "company", "title", "region", "city", "product_line", "note",
               "campaign", "source_channel", "amount", "stage", "status", "owner", "customer", "extra",
               "leadbot_id")
# What a CRM may set: leadbot's own statuses and the three ends it knows by name.
LEAD_STATUSES = (*WORKING, "won", "lost", "closed")
_LEAD_COLUMNS = {"name": "name", "phone": "phone", "email": "email", "company": "company", "title": "title",
                 "region": "region", "city": "city", "product_line": "product_line", "note": "note",
                 "campaign": "campaign", "source_channel": "source_channel"}
_CUSTOMER_COLUMNS = {"name": "display_name", "company": "company", "title": "title", "city": "city",
                     "address": "address"}
_RESERVED = ("version", "external_id")
MAX_RETRIES = 5


class InboundError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class Invalid(InboundError):
    status, code = 400, "invalid"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}", field=field_name)


class NotFound(InboundError):
    status, code = 404, "not_found"


class VersionConflict(InboundError):
    status, code = 409, "version_conflict"


class IdentityConflict(InboundError):
    status, code = 409, "identity_conflict"


class _Retry(Exception):
    pass


@dataclass(frozen=True, slots=True)
class WriteResult:
    entity_type: str
    entity: Mapping[str, Any]
    created: bool
    changed: tuple[str, ...] = ()
    ignored: tuple[Mapping[str, str], ...] = ()
    # The owner before this write (an update that changed it): the caller tells them the lead
    # was taken from them. Not part of the answer.
    previous_owner_id: int | None = None

    @property
    def version(self) -> int:
        return int(self.entity["version"])

    def to_json(self) -> dict[str, Any]:
        return {self.entity_type: dict(self.entity), "created": self.created, "changed": list(self.changed),
                "ignored": [dict(i) for i in self.ignored], "version": self.version}


@dataclass
class _Plan:
    values: dict[str, Any] = field(default_factory=dict)
    identities: list[tuple[str, str, bool, str]] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    ignored: list[dict[str, str]] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)


MAX_ID = 2**63 - 1  # ids are 64-bit


def _text(name: str, value: Any, limit: int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Invalid(name, "must be text")
    text = str(value).strip()
    if "\x00" in text:
        raise Invalid(name, "contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(name, "is not valid Unicode text (lone surrogate)") from None
    if limit is not None and len(text) > limit:  # None: a Text column, no limit
        raise Invalid(name, f"longer than {limit} characters")
    return text


def _audit_value(name: str, value: Any) -> Any:
    if name == "phone":
        return mask_phone(str(value))
    if name == "email" and isinstance(value, str) and "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    return value


def check_body(body: Any, allowed: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise InboundError("expected a JSON object")
    for key in body:
        if key not in allowed and key not in _RESERVED:
            raise Invalid(str(key), f"unknown field (known: {', '.join(allowed)})")
    return body


def expected_version(body: Mapping[str, Any], if_match: str | None) -> int | None:
    raw: Any = None
    name = "version"
    if if_match:
        raw, name = if_match.strip().removeprefix("W/").strip('"'), "If-Match"
    elif body.get("version") is not None:
        raw = body["version"]
    if raw is None:
        return None
    try:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError
        value = int(raw)
    except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity
        raise Invalid(name, "must be the integer version you last saw") from None
    if not 1 <= value <= MAX_ID:
        raise Invalid(name, f"must be between 1 and {MAX_ID}")
    return value


async def _versioned_update(session: AsyncSession, model: Any, row: Any, values: Mapping[str, Any],
                            now: Any) -> None:
    """Writes `values` only if nobody changed the row since it was read (its version); otherwise
    the whole upsert is retried from fresh reads, so no concurrent edit is lost."""
    done = await session.execute(
        update(model).where(model.id == row.id, model.version == row.version)
        .values(**values, updated_at=now, version=model.version + 1)
        .execution_options(synchronize_session=False))
    if done.rowcount != 1:
        raise _Retry()


def _audit_write(session: AsyncSession, entity: str, entity_id: int, created: bool, external_id: str,
                 plan: "_Plan", actor: str, now: Any) -> None:
    session.add(AuditEntry(
        at=now, actor=actor, action=f"crm.{entity}.{'created' if created else 'updated'}",
        subject_type=entity, subject_id=str(entity_id),
        data={"origin": "crm", "external_id": external_id, "changed": plan.audit,
              "ignored": [i["field"] for i in plan.ignored]}))


class CrmInbound:
    def __init__(self, engine: AsyncEngine, clock: Clock, owners: Mapping[str, str],
                 stages: Sequence[str]) -> None:
        self.engine = engine
        self.clock = clock
        self.owners = dict(owners)
        self.stages = tuple(stages)
        self.sessions = session_factory(engine)

    def _owned_by_leadbot(self, name: str, overrides: Sequence[str] = ()) -> bool:
        return name not in overrides and self.owners.get(name, "shared") == "leadbot"

    # ---- reads -------------------------------------------------------------------------------

    async def lead(self, external_id: str) -> dict[str, Any]:
        external_id = _text("external_id", external_id, 128)
        async with self.sessions() as session:
            lead_id = (await session.execute(select(Lead.id).where(Lead.external_id == external_id))).scalar()
            if lead_id is None:
                raise NotFound(f"no lead with external id {external_id!r}")
            return await session.run_sync(lambda s: lead_snapshot(s, lead_id))

    async def customer(self, external_id: str) -> dict[str, Any]:
        external_id = _text("external_id", external_id, 128)
        async with self.sessions() as session:
            cid = (await session.execute(select(Customer.id).where(Customer.external_id == external_id))).scalar()
            if cid is None:
                raise NotFound(f"no customer with external id {external_id!r}")
            return await session.run_sync(lambda s: customer_snapshot(s, cid))

    # ---- shared helpers ----------------------------------------------------------------------

    async def _rep_id(self, session: AsyncSession, value: Any, name: str = "owner") -> int | None:
        if value is None or value == "":
            return None
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise Invalid(name, "must be the rep's id (the id column of the reps CSV)")
        value = _text(name, value, Rep.__table__.c.external_id.type.length)
        row = (await session.execute(select(Rep.id, Rep.status).where(Rep.external_id == value))).first()
        if row is None:
            raise Invalid(name, f"no rep with id {value!r}")
        if row.status == "left":
            raise Invalid(name, f"rep {value!r} has left")
        return int(row.id)

    async def _retrying(self, work: Any) -> WriteResult:
        for _ in range(MAX_RETRIES):
            try:
                with crm_origin():
                    return await work()
            except _Retry:
                continue
        raise VersionConflict("the record kept changing concurrently; read it again and retry")

    # ---- customers ---------------------------------------------------------------------------

    async def upsert_customer(self, external_id: str, body: Mapping[str, Any], *, if_match: str | None = None,
                              actor: str = "crm") -> WriteResult:
        external_id = _text("external_id", external_id, 128)
        if not external_id:
            raise Invalid("external_id", "must not be empty")
        body = check_body(body, CUSTOMER_FIELDS)
        expected = expected_version(body, if_match)
        return await self._retrying(lambda: self._upsert_customer(external_id, body, expected, actor))

    async def _customer_plan(self, session: AsyncSession, row: Customer | None, body: Mapping[str, Any],
                             overrides: Sequence[str] = ()) -> _Plan:
        plan = _Plan()
        creating = row is None
        for name in CUSTOMER_FIELDS:
            if name not in body:
                continue
            value = body[name]
            if not creating and self._owned_by_leadbot(name, overrides):
                plan.ignored.append({"field": name, "owner": "leadbot",
                                     "reason": "owned by leadbot ([crm_bridge] field_owners); not changed"})
                continue
            if name in _CUSTOMER_COLUMNS:
                column = _CUSTOMER_COLUMNS[name]
                new = _text(name, value, Customer.__table__.c[column].type.length)
                if creating or getattr(row, column) != new:
                    plan.values[column] = new
                    plan.changed.append(name)
                    plan.audit[name] = new
            elif name in ("phone", "email"):
                raw = _text(name, value, 256)
                if not raw:
                    continue
                parsed = normalize_identity(name, raw)
                if parsed is None:
                    raise Invalid(name, "does not parse")
                plan.identities.append((name, parsed[0], parsed[1], raw))
            elif name == "owner":
                rep_id = await self._rep_id(session, value)
                if creating or row.owner_id != rep_id:
                    plan.values["owner_id"] = rep_id
                    plan.changed.append(name)
                    plan.audit[name] = value
            elif name == "do_not_contact":
                if not isinstance(value, bool):
                    raise Invalid(name, "must be true or false")
                if creating or bool(row.do_not_contact) != value:
                    plan.values["do_not_contact"] = value
                    plan.changed.append(name)
                    plan.audit[name] = value
            elif name == "attributes":
                if not isinstance(value, Mapping):
                    raise Invalid(name, "must be an object")
                current = dict(row.attributes or {}) if row is not None else {}
                merged = {**current, **value}
                if merged != current:
                    plan.values["attributes"] = merged
                    plan.changed.append(name)
                    plan.audit[name] = sorted(value)
        return plan

    async def _upsert_customer(self, external_id: str, body: Mapping[str, Any], expected: int | None,
                               actor: str, overrides: Sequence[str] = ()) -> WriteResult:
        from identity.service import link_identity_in, normalized_columns

        now = self.clock.now()
        async with self.sessions() as session:
            try:
                async with session.begin():
                    row = (await session.execute(select(Customer).where(Customer.external_id == external_id)
                                                 .with_for_update())).scalar_one_or_none()
                    if row is None and expected is not None:
                        raise NotFound(f"no customer with external id {external_id!r} (a version was given)")
                    if row is not None and row.status == "merged" and row.merged_into:
                        # A tombstone: the write lands on the customer that lives on.
                        row = await session.get(Customer, row.merged_into, with_for_update=True)
                    if row is not None and expected is not None and row.version != expected:
                        raise VersionConflict(f"customer is at version {row.version}, not {expected}",
                                              current_version=row.version,
                                              current=await session.run_sync(lambda s: customer_snapshot(s, row.id)))
                    plan = await self._customer_plan(session, row, body, overrides)
                    created = row is None
                    if created:
                        name, company = plan.values.get("display_name", ""), plan.values.get("company", "")
                        row = Customer(external_id=external_id, created_at=now, updated_at=now, version=1,
                                       **{**plan.values, **normalized_columns(name, company)})
                        session.add(row)
                        await session.flush()
                    linked = []
                    for kind, value, strong, raw in plan.identities:
                        result = await link_identity_in(session, row.id, kind, value, raw=raw, now=now, strong=strong)
                        if result.conflict_customer_id is not None:
                            raise IdentityConflict(f"{kind}: already belongs to another customer",
                                                   field=kind, held_by=result.conflict_customer_id)
                        if result.linked:
                            linked.append(kind)
                            plan.audit[kind] = _audit_value(kind, raw)
                    plan.changed.extend(linked)
                    if not created and plan.changed:
                        values = dict(plan.values)
                        if "display_name" in values or "company" in values:
                            values.update(normalized_columns(values.get("display_name", row.display_name),
                                                             values.get("company", row.company)))
                        await _versioned_update(session, Customer, row, values, now)
                    if created or plan.changed:
                        _audit_write(session, "customer", row.id, created, external_id, plan, actor, now)
                    await session.flush()
                    snap = await session.run_sync(lambda s: customer_snapshot(s, row.id))
            except IntegrityError:
                raise _Retry() from None  # a concurrent create of the same external id won
        return WriteResult("customer", snap, created, tuple(dict.fromkeys(plan.changed)), tuple(plan.ignored))

    async def set_do_not_contact(self, external_id: str, value: Any, *, if_match: str | None = None,
                                 actor: str = "crm") -> WriteResult:
        if not isinstance(value, bool):
            raise Invalid("do_not_contact", "must be true or false")
        body = {"do_not_contact": value}
        external_id = _text("external_id", external_id, 128)
        expected = expected_version({}, if_match)

        async def work() -> WriteResult:
            async with self.sessions() as session:
                if (await session.execute(select(Customer.id).where(Customer.external_id == external_id))).scalar() is None:
                    raise NotFound(f"no customer with external id {external_id!r}")
            # An opt-out is compliance, not master data: it is applied whoever owns the field.
            return await self._upsert_customer(external_id, body, expected, actor, ("do_not_contact",))

        return await self._retrying(work)

    # ---- leads -------------------------------------------------------------------------------

    async def upsert_lead(self, external_id: str, body: Mapping[str, Any], *, if_match: str | None = None,
                          actor: str = "crm") -> WriteResult:
        external_id = _text("external_id", external_id, 128)
        if not external_id:
            raise Invalid("external_id", "must not be empty")
        body = check_body(body, LEAD_FIELDS)
        expected = expected_version(body, if_match)
        return await self._retrying(lambda: self._upsert_lead(external_id, body, expected, actor))

    async def _lead_plan(self, session: AsyncSession, row: Lead | None, body: Mapping[str, Any],
                         overrides: Sequence[str] = ()) -> _Plan:
        plan = _Plan()
        creating = row is None
        for name in LEAD_FIELDS:
            if name not in body or name == "leadbot_id":  # leadbot_id links, it is not a field
                continue
            value = body[name]
            if not creating and self._owned_by_leadbot(name, overrides):
                plan.ignored.append({"field": name, "owner": "leadbot",
                                     "reason": "owned by leadbot ([crm_bridge] field_owners); not changed"})
                continue
            new: Any
            column = _LEAD_COLUMNS.get(name, name)
            if name in _LEAD_COLUMNS:
                new = _text(name, value, Lead.__table__.c[column].type.length)
            elif name == "amount":
                new = None if value in (None, "") else parse_amount(value)
                if value not in (None, "") and new is None:
                    raise Invalid(name, "must be a number such as 12000 or \"1.2万\"")
            elif name == "stage":
                new = _text(name, value, 64)
                if new and new not in self.stages:
                    raise Invalid(name, f"unknown stage {new!r} (stages: {', '.join(self.stages)})")
            elif name == "status":
                new = _text(name, value, 16)
                if new not in LEAD_STATUSES:
                    raise Invalid(name, f"must be one of {', '.join(LEAD_STATUSES)}")
            elif name == "owner":
                column, new = "owner_id", await self._rep_id(session, value)
            elif name == "customer":
                column = "customer_id"
                if value in (None, ""):
                    new = None
                else:
                    ext = _text(name, value, 128)
                    new = (await session.execute(select(Customer.id).where(Customer.external_id == ext))).scalar()
                    if new is None:
                        raise Invalid(name, f"no customer with external id {ext!r}; PUT it first")
            elif name == "extra":
                if not isinstance(value, Mapping):
                    raise Invalid(name, "must be an object")
                current = dict(row.extra or {}) if row is not None else {}
                new = {**current, **value}
                if new == current and not creating:
                    continue
            else:  # pragma: no cover - LEAD_FIELDS and the branches above agree
                continue
            if creating or getattr(row, column) != new:
                plan.values[column] = new
                plan.changed.append(name)
                plan.audit[name] = sorted(new) if name == "extra" else _audit_value(name, new)
        return plan

    async def _link_existing_lead(self, session: AsyncSession, leadbot_id: Any, external_id: str, actor: str,
                                  now: Any) -> Lead:
        try:
            if isinstance(leadbot_id, (bool, float)):
                raise ValueError
            lead_id = int(leadbot_id)
        except (TypeError, ValueError):
            raise Invalid("leadbot_id", "must be the id of a lead in leadbot") from None
        if not 1 <= lead_id <= MAX_ID:
            raise NotFound(f"no lead with leadbot id {lead_id}")
        row = (await session.execute(select(Lead).where(Lead.id == lead_id).with_for_update())).scalar_one_or_none()
        if row is None:
            raise NotFound(f"no lead with leadbot id {lead_id}")
        if row.external_id not in (None, "", external_id):
            raise Invalid("leadbot_id", f"lead {lead_id} is already linked to CRM id {row.external_id!r}")
        row.external_id = external_id
        session.add(AuditEntry(at=now, actor=actor, action="lead.crm_linked", subject_type="lead",
                               subject_id=str(lead_id), data={"external_id": external_id, "origin": "crm"}))
        return row

    async def _upsert_lead(self, external_id: str, body: Mapping[str, Any], expected: int | None,
                           actor: str, overrides: Sequence[str] = ()) -> WriteResult:
        from identity.service import link_lead_customer

        now = self.clock.now()
        async with self.sessions() as session:
            try:
                async with session.begin():
                    row = (await session.execute(select(Lead).where(Lead.external_id == external_id)
                                                 .with_for_update())).scalar_one_or_none()
                    if row is None and body.get("leadbot_id") not in (None, ""):
                        # The CRM names a lead leadbot already has (it came in through intake):
                        # attach the CRM's id to it instead of creating a second lead.
                        row = await self._link_existing_lead(session, body["leadbot_id"], external_id, actor, now)
                    if row is None and expected is not None:
                        raise NotFound(f"no lead with external id {external_id!r} (a version was given)")
                    if row is not None and expected is not None and row.version != expected:
                        raise VersionConflict(f"lead is at version {row.version}, not {expected}",
                                              current_version=row.version,
                                              current=await session.run_sync(lambda s: lead_snapshot(s, row.id)))
                    plan = await self._lead_plan(session, row, body, overrides)
                    created = row is None
                    previous_owner = row.owner_id if row is not None else None
                    if created:
                        values = dict(plan.values)
                        if values.get("customer_id") is None:
                            values["customer_id"] = await link_lead_customer(
                                session, {k: values.get(k, "") for k in ("name", "phone", "email", "company",
                                                                         "title", "city")}, now)
                        if values.get("owner_id") is not None and "status" not in values:
                            values["status"] = "assigned"
                            values["assigned_at"] = now
                        if values.get("stage"):
                            values["stage_entered_at"] = now
                        values.setdefault("source_channel", "crm")
                        row = Lead(external_id=external_id, intake_key=f"crm:{external_id}"[:300], created_at=now,
                                   updated_at=now, last_activity_at=now, version=1,
                                   **{"status": "new", "extra": {}, "flags": [], **values})
                        session.add(row)
                        await session.flush()
                    elif plan.changed:
                        values = dict(plan.values)
                        if "owner_id" in values and "status" not in values and row.status in WORKING:
                            # A new owner starts a fresh offer: assigned, not yet claimed.
                            owner_id = values["owner_id"]
                            values.update(status="assigned" if owner_id else "pool", claimed_at=None,
                                          assigned_at=now if owner_id else None)
                        if "stage" in values:
                            values["stage_entered_at"] = now
                            session.add(StageHistory(lead_id=row.id, from_stage=row.stage or "",
                                                     to_stage=values["stage"], actor=actor, at=now,
                                                     evidence={"origin": "crm"}))
                        await _versioned_update(session, Lead, row, values, now)
                    if created or plan.changed:
                        _audit_write(session, "lead", row.id, created, external_id, plan, actor, now)
                    await session.flush()
                    snap = await session.run_sync(lambda s: lead_snapshot(s, row.id))
            except IntegrityError:
                raise _Retry() from None
        return WriteResult("lead", snap, created, tuple(plan.changed), tuple(plan.ignored),
                           previous_owner_id=previous_owner)

    async def command_lead(self, external_id: str, body: Mapping[str, Any], *, if_match: str | None = None,
                           actor: str = "crm") -> WriteResult:
        """Stage and/or owner set by the CRM as explicit intent (ownership does not apply)."""
        external_id = _text("external_id", external_id, 128)
        body = check_body(body, ("stage", "owner"))
        if not body.get("stage") and "owner" not in body:
            raise Invalid("stage", "give stage and/or owner")
        expected = expected_version(body, if_match)
        fields = {k: body[k] for k in ("stage", "owner") if k in body}

        async def work() -> WriteResult:
            async with self.sessions() as session:
                if (await session.execute(select(Lead.id).where(Lead.external_id == external_id))).scalar() is None:
                    raise NotFound(f"no lead with external id {external_id!r}")
            return await self._upsert_lead(external_id, fields, expected, actor, ("stage", "owner"))

        return await self._retrying(work)
