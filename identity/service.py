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
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from sqlalchemy import Insert, Integer, Select, bindparam, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from store import dto
from identity.customers import (Db, connection, customer_dto, customer_record, load_records,
                                            normalized_columns, refresh_index, suggestions, survivor)
from identity.index import IdentityIndex
from identity.matcher import (DEFAULT_CONFIG, NEW, POSSIBLE, SAME, Id, MatchConfig,
                                         MatchDecision, Matcher, Record, build_record, decision_summary,
                                         mask_value)
from identity.merge import (MergeError, MergeResult, UndoResult, mark_distinct, merge_customers,
                                       undo_merge)
from identity.names import parse_name
from identity.normalize import normalize_identity, parse_phones
from store.models import AuditEntry, Customer, DistinctPair, Identity

if TYPE_CHECKING:
    from crm.sql_store import SqlCRMStore

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
    reason_zh: str = ""

    def reason_in(self, lang: str) -> str:
        """The reason whole in the card's language (zh or en)."""
        return self.reason_zh if lang == "zh" and self.reason_zh else self.reason

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

def _to_result(decision: MatchDecision) -> MatchResult:
    return MatchResult(kind=decision.kind, customer_id=decision.customer_id, score=decision.score,
                       reason=decision.reason,
                       candidates=tuple((c.customer_id, c.score, c.reason) for c in decision.candidates),
                       decision=decision, reason_zh=decision.reason_zh)


# ---- the SQL candidate source ----------------------------------------------------------------

# Functions here take the caller's session or a bare connection (intake's), and run Core statements
# built once below on its connection: building, cache-keying and ORM-executing a statement on every
# call cost more CPU than the database spends answering it.

_customers, _identities = Customer.__table__, Identity.__table__
_c, _i = _customers.c, _identities.c
_ACTIVE = _c.status != "merged"
_BLOCK_COLUMNS = {"name": _c.normalized_name, "company": _c.normalized_company}

# With the holder's tombstone, so a hit on a customer that was not merged away needs no second look-up.
_STRONG_HOLDERS = (select(_i.customer_id, _i.kind, _i.value, _c.merged_into)
                   .join_from(_identities, _customers, _i.customer_id == _c.id)
                   .where(_i.strong.is_(True), _i.kind.in_(bindparam("kinds", expanding=True)),
                          _i.value.in_(bindparam("values", expanding=True))))
_LANDLINE_HOLDERS = select(_i.customer_id, _i.value).where(
    _i.kind == "phone", _i.strong.is_(False), _i.value.in_(bindparam("values", expanding=True)))


def _block_counts(criteria: tuple[str, ...]) -> Select[Any]:
    """One statement counting the active customers in each block (name, company) of a probe."""
    return select(*(select(func.count()).select_from(_customers).where(
        _BLOCK_COLUMNS[c] == bindparam(f"{c}_key"), _ACTIVE, _c.id != bindparam("probe_id")).scalar_subquery()
        for c in criteria))


_BLOCK_COUNTS = {criteria: _block_counts(criteria) for criteria in (("name",), ("company",), ("name", "company"))}
_BLOCK_IDS = {criterion: select(_c.id).where(column == bindparam("key"), _ACTIVE)
              for criterion, column in _BLOCK_COLUMNS.items()}
_BOTH_BLOCKS_IDS = select(_c.id).where(
    _c.normalized_name == bindparam("name_key"), _c.normalized_company == bindparam("company_key"),
    _ACTIVE).limit(bindparam("limit", type_=Integer))
_DISTINCT_FROM = select(DistinctPair.customer_a, DistinctPair.customer_b).where(
    or_(DistinctPair.customer_a == bindparam("id"), DistinctPair.customer_b == bindparam("id")))


async def _strong_hits(conn: AsyncConnection, probe: Record) -> dict[Id, list[tuple[str, str]]]:
    """Customer (merge survivor) -> the probe's strong identifiers it holds, in the probe's order."""
    index_kind = {(("phone" if kind == "mobile" else kind), value): kind for kind, value in probe.strong_keys()}
    if not index_kind:
        return {}
    rows = await conn.execute(_STRONG_HOLDERS, {"kinds": sorted({k for k, _ in index_kind}),
                                                "values": sorted({v for _, v in index_kind})})
    # The IN lists also pair one kind with another's value: only the probe's own pairs count.
    held: dict[tuple[str, str], list[tuple[int, int | None]]] = {}
    for cid, kind, value, merged_into in rows:
        held.setdefault((kind, value), []).append((cid, merged_into))
    hits: dict[Id, list[tuple[str, str]]] = {}
    for pair, kind in index_kind.items():
        for cid, merged_into in held.get(pair, ()):
            if merged_into:
                cid = await survivor(conn, cid)
            if cid != probe.id:
                hits.setdefault(cid, []).append((kind, pair[1]))
    return hits


async def sql_decide(db: Db, probe: Record, config: MatchConfig | None = None) -> MatchDecision:
    """The matcher's decision for probe, with candidates and frequencies read from the database."""
    conn = await connection(db)
    return await _decide_on(conn, probe, await _strong_hits(conn, probe), config)


async def _decide_on(conn: AsyncConnection, probe: Record, strong_hits: dict[Id, list[tuple[str, str]]],
                     config: MatchConfig | None) -> MatchDecision:
    """sql_decide, the probe's strong hits already looked up."""
    config = config or DEFAULT_CONFIG
    freqs: dict[tuple[str, str], int] = {}
    candidate_ids: set[int] = set()
    if probe.landlines:
        rows = (await conn.execute(_LANDLINE_HOLDERS, {"values": list(probe.landlines)})).all()
        holders: dict[str, set[int]] = {}
        for cid, value in rows:
            if cid != probe.id:
                holders.setdefault(value, set()).add(cid)
        for value in probe.landlines:
            found = holders.get(value, set())
            freqs[("landline", value)] = len(found)
            if len(found) <= config.block_limit:
                candidate_ids.update(found)
    name_key = probe.name.key if probe.name.key and not probe.name.weak else ""
    keys = {criterion: key for criterion, key in (("name", name_key), ("company", probe.company_key)) if key}
    big: set[str] = set()
    if keys:
        counts = (await conn.execute(_BLOCK_COUNTS[tuple(keys)], {
            **{f"{criterion}_key": key for criterion, key in keys.items()},
            "probe_id": probe.id if isinstance(probe.id, int) else -1})).one()
        for (criterion, key), count in zip(keys.items(), counts):
            freqs[(criterion, key)] = count
            cap = config.name_cap if criterion == "name" else config.company_cap
            if 0 < count <= min(config.block_limit, cap):
                candidate_ids.update((await conn.execute(_BLOCK_IDS[criterion], {"key": key})).scalars())
            elif count:
                big.add(criterion)
    if len(big) == 2:
        # A common name at a big company: only customers with both.
        candidate_ids.update((await conn.execute(_BOTH_BLOCKS_IDS, {
            "name_key": name_key, "company_key": probe.company_key, "limit": config.max_candidates})).scalars())
    candidate_ids.update(i for i in strong_hits if isinstance(i, int))
    if isinstance(probe.id, int):
        candidate_ids.discard(probe.id)
    records = await load_records(conn, list(candidate_ids)[: config.max_candidates])
    distinct: set[int] = set()
    if isinstance(probe.id, int):
        for a, b in (await conn.execute(_DISTINCT_FROM, {"id": probe.id})).all():
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
        records = await load_records(session, [customer_id])
        if customer_id not in records:
            return MatchResult(NEW, None, 0.0, "customer not found or merged")
        if index is not None:
            return _to_result(index.match(records[customer_id]))
        return _to_result(await sql_decide(session, records[customer_id], config))


# ON CONFLICT DO NOTHING, so a concurrent link of the same value loses quietly instead of aborting the
# caller's transaction; other dialects get a plain INSERT.
_IDENTITY_UPSERTS: dict[str, Insert] = {
    "postgresql": postgresql.insert(_identities).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(_identities).on_conflict_do_nothing(),
}
_IDENTITY_INSERT = insert(_identities)
_STRONG_HOLDER = select(_i.customer_id).where(
    _i.kind == bindparam("kind"), _i.value == bindparam("value"), _i.strong.is_(True))
_HELD_BY = select(_i.customer_id).where(
    _i.kind == bindparam("kind"), _i.value == bindparam("value"), _i.customer_id == bindparam("customer_id"))


def _identity_row(customer_id: int, kind: str, value: str, strong: bool, raw: str, now: Any) -> dict[str, Any]:
    return dict(customer_id=customer_id, kind=kind, value=value, strong=strong, raw=(raw or "")[:256],
                created_at=now)


async def _insert_identity(db: Db, customer_id: int, kind: str, value: str, strong: bool,
                           raw: str, now: Any) -> bool:
    """Inserts unless a strong twin exists; True when written."""
    conn = await connection(db)
    stmt = _IDENTITY_UPSERTS.get(conn.dialect.name, _IDENTITY_INSERT)
    result = await conn.execute(stmt, _identity_row(customer_id, kind, value, strong, raw, now))
    return bool(result.rowcount)


async def link_identity_in(db: Db, customer_id: int, kind: str, value: str, *, raw: str = "",
                           now: Any, strong: bool | None = None) -> LinkResult:
    """link_identity inside the caller's transaction; value must already be normalised."""
    if strong is None:
        strong = kind != "phone"
    conn = await connection(db)
    params = {"kind": kind, "value": value, "customer_id": customer_id}
    existing = (await conn.execute(_STRONG_HOLDER if strong else _HELD_BY, params)).scalars().all()
    if customer_id in existing:
        return LinkResult(customer_id, kind, value, linked=False, already=True)
    if strong and existing:
        return LinkResult(customer_id, kind, value, linked=False, conflict_customer_id=existing[0])
    if await _insert_identity(conn, customer_id, kind, value, strong, raw, now):
        return LinkResult(customer_id, kind, value, linked=True)
    holder = (await conn.execute(_STRONG_HOLDER, params)).scalar_one_or_none()
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
        customer_id = await survivor(session, customer_id)
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
        await refresh_index(store, index, [customer_id])
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


# ---- lead intake -----------------------------------------------------------------------------

_INSERT_CUSTOMER = insert(_customers).returning(_c.id)


async def link_lead_customer(db: Db, values: Mapping[str, Any], now: Any,
                             config: MatchConfig | None = None) -> int:
    """The customer a new lead belongs to, inside the intake transaction.

    A strong identifier (mobile, email) names an existing customer: the lead joins it and the
    lead's other identifiers are added to it. Otherwise a new customer is created; when weak
    evidence suggests an existing one, the suggestion is kept in the new customer's attributes
    ("possible_duplicates") for the lead card's "possible duplicate of X — merge?"."""
    conn = await connection(db)
    phones, _ = parse_phones(values.get("phone", ""))
    probe = build_record(None, name=values.get("name", ""), company=values.get("company", ""),
                         phones=values.get("phone", ""), emails=values.get("email", ""), city=values.get("city", ""))
    strong_hits = await _strong_hits(conn, probe)
    decision = await _decide_on(conn, probe, strong_hits, config)
    # The probe has no id, so every holder of one of its strong identifiers is a hit.
    held = {("phone" if kind == "mobile" else kind, value) for hits in strong_hits.values() for kind, value in hits}
    idents: list[tuple[str, str, bool, str]] = [("phone", p.e164, p.strong, values.get("phone", "")) for p in phones]
    idents += [("email", e, True, values.get("email", "")) for e in probe.emails]
    if decision.kind == SAME and isinstance(decision.customer_id, int):
        customer_id = decision.customer_id
        await _link_lead_identities(conn, customer_id, idents, held, now, new_customer=False)
    else:
        customer_id = await _insert_lead_customer(conn, values, decision, now)
        await _link_lead_identities(conn, customer_id, idents, held, now, new_customer=True)
    return customer_id


async def _insert_lead_customer(conn: AsyncConnection, values: Mapping[str, Any], decision: MatchDecision,
                                now: Any) -> int:
    name, company = values.get("name", "") or "", values.get("company", "") or ""
    attributes: dict[str, Any] = {}
    if decision.kind == POSSIBLE:
        attributes["possible_duplicates"] = suggestions(decision.candidates)
    row = dict(display_name=name[:256], company=company[:256], title=(values.get("title") or "")[:128],
               city=(values.get("city") or "")[:64], attributes=attributes, created_at=now, updated_at=now,
               **normalized_columns(name, company))
    return (await conn.execute(_INSERT_CUSTOMER, row)).scalar_one()


async def _link_lead_identities(conn: AsyncConnection, customer_id: int, idents: Sequence[tuple[str, str, bool, str]],
                                held: set[tuple[str, str]], now: Any, *, new_customer: bool) -> None:
    """What link_identity_in does for each identifier, without its look-ups where the answer is
    known: a strong identifier in held (found by the match) has a holder, this customer or another,
    so nothing is written; any other strong one goes in unless a concurrent link got there first (ON
    CONFLICT DO NOTHING); and a new customer holds no weak one (a landline) yet. A weak identifier
    may repeat across customers but not on one, so on an existing customer each needs its look-up."""
    upsert = _IDENTITY_UPSERTS.get(conn.dialect.name)
    if upsert is None or not (new_customer or all(strong for _, _, strong, _ in idents)):
        for kind, value, strong, raw in idents:
            await link_identity_in(conn, customer_id, kind, value, raw=raw, now=now, strong=strong)
        return
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, value, strong, raw in idents:
        if not (strong and (kind, value) in held):
            rows.setdefault((kind, value), _identity_row(customer_id, kind, value, strong, raw, now))
    if rows:
        await conn.execute(upsert, list(rows.values()))


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
