"""The public, async face of identity resolution, on SqlCRMStore's sessions.

- match_contact(store, contact) -> MatchResult: is this new WeCom/DingTalk friend a customer we have?
- link_identity / link_contact: attach an identifier (external_userid, unionid, mobile ...) to a customer.
- create_customer_from_contact: the friend is new: create the customer with its identifiers.
- find_duplicates(store, customer_id): "possible duplicate of X — merge?" for a lead card.
- merge_customers / undo_merge / mark_distinct: re-exported from merge.py.
- build_index(store): an in-memory IdentityIndex of every active customer, for callers that match
  at volume; pass it as index= to the functions here and they keep it current.

Without an index, candidates come from the database: identities by (kind, value), customers by
normalized_name (the order-free pinyin key of the name) and normalized_company (the pinyin core of
the company), both indexed columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from crm_bridge import dto
from crm_bridge.identity.company import company_key
from crm_bridge.identity.index import IdentityIndex
from crm_bridge.identity.matcher import (DEFAULT_CONFIG, NEW, POSSIBLE, SAME, Candidate, Id, MatchConfig,
                                         MatchDecision, Matcher, Record, build_record, decision_summary,
                                         mask_value, record_from_identities)
from crm_bridge.identity.merge import (MergeError, MergeResult, UndoResult, mark_distinct, merge_customers,
                                       undo_merge)
from crm_bridge.identity.names import parse_name
from crm_bridge.identity.normalize import normalize_identity, parse_phones
from crm_bridge.models import AuditEntry, Customer, DistinctPair, Identity

if TYPE_CHECKING:
    from crm_bridge.sql_store import SqlCRMStore

__all__ = [
    "ContactInfo", "MatchResult", "LinkResult", "IdentityConflict", "IdentityService",
    "match_contact", "link_identity", "link_contact", "create_customer_from_contact", "find_duplicates",
    "build_index", "customer_record", "merge_customers", "undo_merge", "mark_distinct", "MergeError",
    "MergeResult", "UndoResult", "normalized_columns", "CustomerImportSummary", "backfill_normalized",
]


@dataclass(frozen=True, slots=True)
class ContactInfo:
    """A contact as a platform describes it (WeCom externalcontact/get, DingTalk CRM customer).

    name is the contact's own WeChat name (often a nickname); remark, remark_mobiles and
    remark_corp_name are what the rep who added the friend wrote about them."""

    external_userid: str = ""
    unionid: str = ""
    name: str = ""
    corp_name: str = ""
    remark_mobiles: tuple[str, ...] = ()
    remark: str = ""
    platform: str = "wecom"
    remark_corp_name: str = ""
    email: str = ""
    dingtalk_id: str = ""

    def display_name(self) -> str:
        """The remark when the rep wrote a real name there, else the contact's own name."""
        remark = parse_name(self.remark)
        if remark.present and not remark.weak:
            return remark.display
        own = parse_name(self.name)
        return own.display or remark.display or self.name.strip() or self.remark.strip()

    def company(self) -> str:
        return self.remark_corp_name.strip() or self.corp_name.strip()

    def identities(self) -> list[tuple[str, str]]:
        """(kind, raw value) pairs to link to the customer this contact is."""
        out: list[tuple[str, str]] = []
        if self.external_userid:
            out.append(("external_userid", self.external_userid))
        if self.unionid:
            out.append(("unionid", self.unionid))
        if self.dingtalk_id:
            out.append(("dingtalk_id", self.dingtalk_id))
        for mobile in self.remark_mobiles:
            if mobile:
                out.append(("phone", mobile))
        if self.email:
            out.append(("email", self.email))
        return out

    def record(self, name: str | None = None) -> Record:
        return build_record(None, name=self.display_name() if name is None else name, company=self.company(),
                            phones=list(self.remark_mobiles), emails=[self.email] if self.email else (),
                            unionids=self.unionid, external_userids=self.external_userid,
                            dingtalk_ids=self.dingtalk_id)


@dataclass(frozen=True, slots=True)
class MatchResult:
    """customer_id is the match for "same" and the best suggestion for "possible"."""

    kind: str  # same | possible | new
    customer_id: int | None
    score: float
    reason: str
    candidates: tuple[tuple[int, float, str], ...] = ()  # (customer id, score, reason), best first
    decision: MatchDecision | None = None

    @property
    def is_same(self) -> bool:
        return self.kind == SAME

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "customer_id": self.customer_id, "score": round(self.score, 3),
                "reason": self.reason,
                "candidates": [{"customer_id": c, "score": round(s, 3), "reason": r} for c, s, r in self.candidates]}


@dataclass(frozen=True, slots=True)
class CustomerImportSummary(dto.ImportSummary):
    """An import's summary plus what identity resolution did: rows merged into an existing
    customer (a strong identifier) and rows imported as new but suspected to be one."""

    merged: tuple[dto.RowOutcome, ...] = ()
    suspected: tuple[dto.RowOutcome, ...] = ()


@dataclass(frozen=True, slots=True)
class LinkResult:
    customer_id: int
    kind: str
    value: str
    linked: bool  # a new identity row was written
    already: bool = False  # this customer already had it
    conflict_customer_id: int | None = None  # a strong identifier another customer holds


class IdentityConflict(Exception):
    def __init__(self, kind: str, value: str, customer_id: int) -> None:
        super().__init__(f"{kind} {mask_value(kind, value)} already belongs to customer {customer_id}")
        self.kind, self.value, self.customer_id = kind, value, customer_id


# ---- records and normalised columns ----------------------------------------------------------

def normalized_columns(display_name: str, company: str) -> dict[str, str]:
    """Customer.normalized_name / normalized_company: the blocking keys the SQL matcher looks up."""
    return {"normalized_name": parse_name(display_name).key[:256], "normalized_company": company_key(company)[:256]}


def customer_record(row: Customer, identities: Iterable[Identity] = ()) -> Record:
    return record_from_identities(row.id, name=row.display_name, company=row.company, address=row.address,
                                  city=row.city, identities=[(i.kind, i.value, i.strong) for i in identities])


def _to_result(decision: MatchDecision) -> MatchResult:
    return MatchResult(kind=decision.kind, customer_id=decision.customer_id, score=decision.score,
                       reason=decision.reason,
                       candidates=tuple((c.customer_id, c.score, c.reason) for c in decision.candidates),
                       decision=decision)


# ---- the SQL candidate source ----------------------------------------------------------------

async def _survivor(session: AsyncSession, customer_id: int) -> int:
    seen: set[int] = set()
    while customer_id not in seen:
        seen.add(customer_id)
        merged_into = (await session.execute(
            select(Customer.merged_into).where(Customer.id == customer_id))).scalar_one_or_none()
        if not merged_into:
            return customer_id
        customer_id = merged_into
    return customer_id


async def _load_records(session: AsyncSession, ids: Iterable[int]) -> dict[int, Record]:
    ids = sorted(set(ids))
    out: dict[int, Record] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        customers = (await session.execute(
            select(Customer).where(Customer.id.in_(chunk), Customer.status != "merged"))).scalars().all()
        if not customers:
            continue
        identities: dict[int, list[Identity]] = {}
        for ident in (await session.execute(
                select(Identity).where(Identity.customer_id.in_([c.id for c in customers])))).scalars():
            identities.setdefault(ident.customer_id, []).append(ident)
        for c in customers:
            out[c.id] = customer_record(c, identities.get(c.id, ()))
    return out


async def sql_decide(session: AsyncSession, probe: Record, config: MatchConfig | None = None) -> MatchDecision:
    """The matcher's decision for probe, with candidates and frequencies read from the database."""
    config = config or DEFAULT_CONFIG
    freqs: dict[tuple[str, str], int] = {}
    strong_hits: dict[Id, list[tuple[str, str]]] = {}
    pairs = [(("phone" if kind == "mobile" else kind), value, kind) for kind, value in probe.strong_keys()]
    if pairs:
        rows = (await session.execute(
            select(Identity.customer_id, Identity.kind, Identity.value).where(
                Identity.strong.is_(True),
                or_(*[and_(Identity.kind == k, Identity.value == v) for k, v, _ in pairs])))).all()
        index_kind = {(k, v): ik for k, v, ik in pairs}
        for cid, kind, value in rows:
            cid = await _survivor(session, cid)
            if cid != probe.id:
                strong_hits.setdefault(cid, []).append((index_kind[(kind, value)], value))
    candidate_ids: set[int] = set()
    if probe.landlines:
        rows = (await session.execute(select(Identity.customer_id, Identity.value).where(
            Identity.kind == "phone", Identity.strong.is_(False), Identity.value.in_(probe.landlines)))).all()
        holders: dict[str, set[int]] = {}
        for cid, value in rows:
            if cid != probe.id:
                holders.setdefault(value, set()).add(cid)
        for value in probe.landlines:
            found = holders.get(value, set())
            freqs[("landline", value)] = len(found)
            if len(found) <= config.block_limit:
                candidate_ids.update(found)
    active = Customer.status != "merged"
    name_key = probe.name.key if probe.name.key and not probe.name.weak else ""
    big: dict[str, Any] = {}
    for criterion, column, key, cap in (("name", Customer.normalized_name, name_key, config.name_cap),
                                        ("company", Customer.normalized_company, probe.company_key,
                                         config.company_cap)):
        if not key:
            continue
        count = (await session.execute(select(func.count()).select_from(Customer).where(
            column == key, active, Customer.id != (probe.id if isinstance(probe.id, int) else -1)))).scalar_one()
        freqs[(criterion, key)] = count
        if 0 < count <= min(config.block_limit, cap):
            candidate_ids.update((await session.execute(select(Customer.id).where(column == key, active))).scalars())
        elif count:
            big[criterion] = (column, key)
    if len(big) == 2:
        # A common name at a big company: only customers with both.
        candidate_ids.update((await session.execute(select(Customer.id).where(
            Customer.normalized_name == name_key, Customer.normalized_company == probe.company_key, active)
            .limit(config.max_candidates))).scalars())
    candidate_ids.update(i for i in strong_hits if isinstance(i, int))
    if isinstance(probe.id, int):
        candidate_ids.discard(probe.id)
    records = await _load_records(session, list(candidate_ids)[: config.max_candidates])
    distinct: set[int] = set()
    if isinstance(probe.id, int):
        for a, b in (await session.execute(select(DistinctPair.customer_a, DistinctPair.customer_b).where(
                or_(DistinctPair.customer_a == probe.id, DistinctPair.customer_b == probe.id)))).all():
            distinct.add(b if a == probe.id else a)

    def freq(criterion: str, key: str) -> int:
        # Criteria without an indexed column (mail domain, address) are counted among candidates.
        if (criterion, key) in freqs:
            return freqs[(criterion, key)]
        if criterion == "domain":
            return sum(1 for r in records.values() if key in r.domains)
        if criterion == "address":
            return sum(1 for r in records.values() if r.address == key)
        return 1

    return Matcher(config).decide(probe, strong_hits=strong_hits, records=records, freq=freq,
                                  is_distinct=lambda a, b: b in distinct)


async def _decide(store: "SqlCRMStore", probe: Record, index: IdentityIndex | None,
                  config: MatchConfig | None) -> MatchDecision:
    if index is not None:
        return index.match(probe)
    async with store.sessions() as session:
        return await sql_decide(session, probe, config)


def _better(a: MatchDecision, b: MatchDecision) -> MatchDecision:
    rank = {SAME: 2, POSSIBLE: 1, NEW: 0}
    return max((a, b), key=lambda d: (rank[d.kind], d.score))


# ---- public API ------------------------------------------------------------------------------

async def match_contact(store: "SqlCRMStore", contact: ContactInfo, *, index: IdentityIndex | None = None,
                        config: MatchConfig | None = None) -> MatchResult:
    """Which customer is this contact? same (a strong identifier: unionid, external_userid, a
    remark mobile, email), possible (name with company and the like: a person confirms), or new."""
    decision = await _decide(store, contact.record(), index, config)
    if decision.kind != SAME:
        # The rep's remark and the contact's own WeChat name may name the person differently.
        own = parse_name(contact.name)
        if own.present and own.display != contact.display_name():
            decision = _better(decision, await _decide(store, contact.record(contact.name), index, config))
    return _to_result(decision)


async def find_duplicates(store: "SqlCRMStore", customer_id: int, *, index: IdentityIndex | None = None,
                          config: MatchConfig | None = None) -> MatchResult:
    """Possible duplicates of a stored customer (pairs marked distinct are left out)."""
    async with store.sessions() as session:
        records = await _load_records(session, [customer_id])
        if customer_id not in records:
            return MatchResult(NEW, None, 0.0, "customer not found or merged")
        if index is not None:
            return _to_result(index.match(records[customer_id]))
        return _to_result(await sql_decide(session, records[customer_id], config))


async def _insert_identity(session: AsyncSession, customer_id: int, kind: str, value: str, strong: bool,
                           raw: str, now: Any) -> bool:
    """Inserts unless a strong twin exists (ON CONFLICT DO NOTHING, so a concurrent link of the same
    value loses quietly instead of aborting the caller's transaction). True when written."""
    values = dict(customer_id=customer_id, kind=kind, value=value, strong=strong, raw=(raw or "")[:256],
                  created_at=now)
    dialect = session.bind.dialect.name if session.bind is not None else ""
    if dialect == "postgresql":
        stmt = postgresql.insert(Identity).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(Identity).values(**values).on_conflict_do_nothing()
    else:
        session.add(Identity(**values))
        await session.flush()
        return True
    result = await session.execute(stmt)
    return bool(result.rowcount)


async def link_identity_in(session: AsyncSession, customer_id: int, kind: str, value: str, *, raw: str = "",
                           now: Any, strong: bool | None = None) -> LinkResult:
    """link_identity inside the caller's transaction; value must already be normalised."""
    if strong is None:
        strong = kind != "phone"
    existing = (await session.execute(select(Identity.customer_id).where(
        Identity.kind == kind, Identity.value == value,
        Identity.strong.is_(True) if strong else Identity.customer_id == customer_id))).scalars().all()
    if customer_id in existing:
        return LinkResult(customer_id, kind, value, linked=False, already=True)
    if strong and existing:
        return LinkResult(customer_id, kind, value, linked=False, conflict_customer_id=existing[0])
    if await _insert_identity(session, customer_id, kind, value, strong, raw, now):
        return LinkResult(customer_id, kind, value, linked=True)
    holder = (await session.execute(select(Identity.customer_id).where(
        Identity.kind == kind, Identity.value == value, Identity.strong.is_(True)))).scalar_one_or_none()
    if holder == customer_id:
        return LinkResult(customer_id, kind, value, linked=False, already=True)
    return LinkResult(customer_id, kind, value, linked=False, conflict_customer_id=holder)


async def link_identity(store: "SqlCRMStore", customer_id: int, kind: str, value: str, actor: str, *,
                        index: IdentityIndex | None = None) -> LinkResult:
    """Attaches an identifier to a customer (following merge tombstones to the survivor).

    kind: phone | email | unionid | external_userid | dingtalk_id | id_number; value as written
    (it is normalised here; a landline is linked as weak evidence). A strong identifier another
    customer holds is not moved: the result names that customer (conflict_customer_id), and a
    merge is the way to bring the two together. Raises ValueError for a value that does not parse."""
    normalized = normalize_identity(kind, value)
    if normalized is None:
        raise ValueError(f"{kind} value does not parse")
    norm_value, strong = normalized
    now = store.clock.now()
    async with store.sessions() as session, session.begin():
        customer_id = await _survivor(session, customer_id)
        if await session.get(Customer, customer_id) is None:
            raise ValueError(f"customer {customer_id} does not exist")
        result = await link_identity_in(session, customer_id, kind, norm_value, raw=value, now=now, strong=strong)
        if result.linked:
            session.add(AuditEntry(at=now, actor=actor, action="identity.linked", subject_type="customer",
                                   subject_id=str(customer_id),
                                   data={"kind": kind, "value": mask_value(kind if kind != "phone" else "mobile",
                                                                           norm_value)}))
        elif result.conflict_customer_id is not None:
            session.add(AuditEntry(at=now, actor=actor, action="identity.link_conflict", subject_type="customer",
                                   subject_id=str(customer_id),
                                   data={"kind": kind, "held_by": result.conflict_customer_id}))
    if index is not None and result.linked:
        await _refresh_index(store, index, [customer_id])
    return result


async def link_contact(store: "SqlCRMStore", customer_id: int, contact: ContactInfo, actor: str, *,
                       index: IdentityIndex | None = None) -> list[LinkResult]:
    """Links every identifier a contact carries (external_userid, unionid, remark mobiles ...)."""
    results = []
    for kind, raw in contact.identities():
        try:
            results.append(await link_identity(store, customer_id, kind, raw, actor, index=index))
        except ValueError:
            continue
    return results


async def create_customer_from_contact(store: "SqlCRMStore", contact: ContactInfo, *, actor: str,
                                       owner_id: int | None = None, index: IdentityIndex | None = None,
                                       attributes: Mapping[str, Any] | None = None) -> dto.Customer:
    """A new customer for a contact nobody knew, with its identifiers linked.

    Raises IdentityConflict when one of its strong identifiers already belongs to a customer
    (a concurrent add of the same friend): match_contact again and link instead."""
    now = store.clock.now()
    name = contact.display_name()
    company = contact.company()
    attrs: dict[str, Any] = {"source_platform": contact.platform}
    if contact.name and contact.name != name:
        attrs[f"{contact.platform}_name"] = contact.name
    if contact.remark:
        attrs[f"{contact.platform}_remark"] = contact.remark
    attrs.update(attributes or {})
    async with store.sessions() as session, session.begin():
        customer = Customer(display_name=name[:256], company=company[:256], owner_id=owner_id, attributes=attrs,
                            created_at=now, updated_at=now, **normalized_columns(name, company))
        session.add(customer)
        await session.flush()
        linked: list[tuple[str, str]] = []
        for kind, raw in contact.identities():
            normalized = normalize_identity(kind, raw)
            if normalized is None:
                continue
            value, strong = normalized
            result = await link_identity_in(session, customer.id, kind, value, raw=raw, now=now, strong=strong)
            if result.conflict_customer_id is not None:
                raise IdentityConflict(kind, value, result.conflict_customer_id)
            linked.append((kind, value))
        session.add(AuditEntry(at=now, actor=actor, action="customer.created", subject_type="customer",
                               subject_id=str(customer.id),
                               data={"platform": contact.platform, "identities": [k for k, _ in linked]}))
        idents = (await session.execute(select(Identity).where(Identity.customer_id == customer.id))).scalars().all()
        from crm_bridge.sql_store import customer_dto

        out = customer_dto(customer, idents)
        record = customer_record(customer, idents)
    if index is not None:
        index.add(record)
    return out


async def build_index(store: "SqlCRMStore", config: MatchConfig | None = None, *, chunk: int = 5000) -> IdentityIndex:
    """Every active customer and every distinct pair, read in chunks of ids."""
    index = IdentityIndex(config)
    last = 0
    async with store.sessions() as session:
        while True:
            customers = (await session.execute(select(Customer).where(
                Customer.id > last, Customer.status != "merged").order_by(Customer.id).limit(chunk))).scalars().all()
            if not customers:
                break
            last = customers[-1].id
            identities: dict[int, list[Identity]] = {}
            for ident in (await session.execute(select(Identity).where(
                    Identity.customer_id >= customers[0].id, Identity.customer_id <= last))).scalars():
                identities.setdefault(ident.customer_id, []).append(ident)
            for c in customers:
                index.add(customer_record(c, identities.get(c.id, ())))
            session.expunge_all()
        for a, b in (await session.execute(select(DistinctPair.customer_a, DistinctPair.customer_b))).all():
            index.add_distinct(a, b)
    return index


async def backfill_normalized(store: "SqlCRMStore", *, chunk: int = 2000) -> int:
    """Fills Customer.normalized_name / normalized_company where they are missing or stale (rows
    written before identity resolution, or by code that does not set them); returns how many
    changed. The SQL matcher finds customers by these columns."""
    changed = 0
    last = 0
    while True:
        async with store.sessions() as session, session.begin():
            rows = (await session.execute(select(Customer).where(Customer.id > last).order_by(Customer.id)
                                          .limit(chunk))).scalars().all()
            if not rows:
                return changed
            last = rows[-1].id
            for row in rows:
                for col, value in normalized_columns(row.display_name, row.company).items():
                    if getattr(row, col) != value:
                        setattr(row, col, value)
                        changed += 1


async def _refresh_index(store: "SqlCRMStore", index: IdentityIndex, customer_ids: Sequence[int]) -> None:
    async with store.sessions() as session:
        records = await _load_records(session, customer_ids)
    for cid in customer_ids:
        if cid in records:
            index.add(records[cid])
        else:
            index.remove(cid)


# ---- lead intake -----------------------------------------------------------------------------

async def link_lead_customer(session: AsyncSession, values: Mapping[str, Any], now: Any,
                             config: MatchConfig | None = None) -> int:
    """The customer a new lead belongs to, inside the intake transaction.

    A strong identifier (mobile, email) names an existing customer: the lead joins it and the
    lead's other identifiers are added to it. Otherwise a new customer is created; when weak
    evidence suggests an existing one, the suggestion is kept in the new customer's attributes
    ("possible_duplicates") for the lead card's "possible duplicate of X — merge?"."""
    phones, _ = parse_phones(values.get("phone", ""))
    probe = build_record(None, name=values.get("name", ""), company=values.get("company", ""),
                         phones=values.get("phone", ""), emails=values.get("email", ""), city=values.get("city", ""))
    decision = await sql_decide(session, probe, config)
    idents: list[tuple[str, str, bool, str]] = [("phone", p.e164, p.strong, values.get("phone", "")) for p in phones]
    idents += [("email", e, True, values.get("email", "")) for e in probe.emails]
    if decision.kind == SAME and isinstance(decision.customer_id, int):
        customer_id = decision.customer_id
    else:
        name, company = values.get("name", "") or "", values.get("company", "") or ""
        attributes: dict[str, Any] = {}
        if decision.kind == POSSIBLE:
            attributes["possible_duplicates"] = _suggestions(decision.candidates)
        customer = Customer(display_name=name[:256], company=company[:256], title=(values.get("title") or "")[:128],
                            city=(values.get("city") or "")[:64], attributes=attributes, created_at=now,
                            updated_at=now, **normalized_columns(name, company))
        session.add(customer)
        await session.flush()
        customer_id = customer.id
    for kind, value, strong, raw in idents:
        await link_identity_in(session, customer_id, kind, value, raw=raw, now=now, strong=strong)
    return customer_id


def _suggestions(candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
    return [{"customer_id": c.customer_id, "score": round(c.score, 3), "reason": c.reason[:300]}
            for c in candidates[:3]]


class IdentityService:
    """The functions above bound to one store, config and (optional) in-memory index; what
    bot/app.py can hand to handlers."""

    def __init__(self, store: "SqlCRMStore", config: MatchConfig | None = None,
                 index: IdentityIndex | None = None) -> None:
        self.store, self.config, self.index = store, config or DEFAULT_CONFIG, index

    async def load_index(self) -> IdentityIndex:
        self.index = await build_index(self.store, self.config)
        return self.index

    async def match_contact(self, contact: ContactInfo) -> MatchResult:
        return await match_contact(self.store, contact, index=self.index, config=self.config)

    async def find_duplicates(self, customer_id: int) -> MatchResult:
        return await find_duplicates(self.store, customer_id, index=self.index, config=self.config)

    async def link_identity(self, customer_id: int, kind: str, value: str, actor: str) -> LinkResult:
        return await link_identity(self.store, customer_id, kind, value, actor, index=self.index)

    async def link_contact(self, customer_id: int, contact: ContactInfo, actor: str) -> list[LinkResult]:
        return await link_contact(self.store, customer_id, contact, actor, index=self.index)

    async def create_customer_from_contact(self, contact: ContactInfo, *, actor: str,
                                           owner_id: int | None = None) -> dto.Customer:
        return await create_customer_from_contact(self.store, contact, actor=actor, owner_id=owner_id,
                                                  index=self.index)

    async def merge(self, survivor_id: int, merged_id: int, actor: str, *, reason: str = "",
                    force: bool = False) -> MergeResult:
        return await merge_customers(self.store, survivor_id, merged_id, actor, reason=reason, force=force,
                                     index=self.index)

    async def undo_merge(self, merge_id: int, actor: str) -> UndoResult:
        return await undo_merge(self.store, merge_id, actor, index=self.index)

    async def mark_distinct(self, a: int, b: int, actor: str) -> bool:
        return await mark_distinct(self.store, a, b, actor, index=self.index)


def summary(decision: MatchDecision) -> dict[str, Any]:
    return decision_summary(decision)
