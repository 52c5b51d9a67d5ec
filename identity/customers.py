"""Stored customers as identity resolution sees them, and the rules every writer shares.

One module owns what the store, the imports, the merge and the matching service would otherwise
reach into each other for:
- survivor(db, id): follows merge tombstones to the customer that lives on (the survivor rule);
- load_records / customer_record / normalized_columns: a customer row as comparable features and
  the blocking columns it is found by;
- refresh_index(store, index, ids): an in-memory IdentityIndex brought up to date after a write;
- suggestions(candidates): the "possible duplicates" kept on a customer for a person to confirm;
- customer_dto: the row as the CRMStore boundary hands it out.
It imports no other module of the store, the service or the imports, so each of them can call it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Sequence

from sqlalchemy import Row, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from store import dto
from identity.company import company_key
from identity.index import IdentityIndex
from identity.matcher import Candidate, Record, record_from_identities
from identity.names import parse_name
from store.models import Customer, Identity

if TYPE_CHECKING:
    from crm.sql_store import SqlCRMStore

# Functions here take the caller's session or a bare connection (intake's).
Db = AsyncSession | AsyncConnection

_customers, _identities = Customer.__table__, Identity.__table__
_c, _i = _customers.c, _identities.c
ACTIVE = _c.status != "merged"
_MERGED_INTO = select(_c.merged_into).where(_c.id == bindparam("id"))
_CUSTOMERS_BY_ID = select(_customers).where(_c.id.in_(bindparam("ids", expanding=True)), ACTIVE)
_IDENTITIES_OF = select(_identities).where(_i.customer_id.in_(bindparam("ids", expanding=True)))


def customer_dto(row: Customer | Row[Any], identities: Sequence[Identity | Row[Any]] = ()) -> dto.Customer:
    return dto.Customer(
        id=row.id, external_id=row.external_id, display_name=row.display_name, company=row.company,
        owner_id=row.owner_id, status=row.status, merged_into=row.merged_into,
        attributes=dict(row.attributes or {}), identities=tuple((i.kind, i.value) for i in identities),
        title=row.title, city=row.city, address=row.address, do_not_contact=row.do_not_contact,
        version=row.version)


def normalized_columns(display_name: str, company: str) -> dict[str, str]:
    """Customer.normalized_name / normalized_company: the blocking keys the SQL matcher looks up."""
    return {"normalized_name": parse_name(display_name).key[:256], "normalized_company": company_key(company)[:256]}


def customer_record(row: Customer | Row[Any], identities: Iterable[Identity | Row[Any]] = ()) -> Record:
    return record_from_identities(row.id, name=row.display_name, company=row.company, address=row.address,
                                  city=row.city, identities=[(i.kind, i.value, i.strong) for i in identities])


async def connection(db: Db) -> AsyncConnection:
    """The connection under db. A session is flushed first, as its own queries would autoflush,
    so rows it holds pending are seen."""
    if isinstance(db, AsyncConnection):
        return db
    if db.autoflush:
        await db.flush()
    return await db.connection()


async def survivor(db: Db, customer_id: int) -> int:
    """The customer that lives on: merge tombstones followed (a loop, which only a hand-edited
    database could hold, ends where it started)."""
    conn = await connection(db)
    seen: set[int] = set()
    while customer_id not in seen:
        seen.add(customer_id)
        merged_into = (await conn.execute(_MERGED_INTO, {"id": customer_id})).scalar_one_or_none()
        if not merged_into:
            return customer_id
        customer_id = merged_into
    return customer_id


async def load_records(db: Db, ids: Iterable[int]) -> dict[int, Record]:
    """Features of the active customers among ids (tombstones left out), 500 ids a statement."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    conn = await connection(db)
    out: dict[int, Record] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        customers = (await conn.execute(_CUSTOMERS_BY_ID, {"ids": chunk})).all()
        if not customers:
            continue
        identities: dict[int, list[Row[Any]]] = {}
        for ident in await conn.execute(_IDENTITIES_OF, {"ids": [c.id for c in customers]}):
            identities.setdefault(ident.customer_id, []).append(ident)
        for c in customers:
            out[c.id] = customer_record(c, identities.get(c.id, ()))
    return out


async def refresh_index(store: "SqlCRMStore", index: IdentityIndex, customer_ids: Sequence[int]) -> None:
    """Re-reads customers after a write: live ones are re-indexed, merged or gone ones removed."""
    async with store.sessions() as session:
        records = await load_records(session, customer_ids)
    for cid in customer_ids:
        if cid in records:
            index.add(records[cid])
        else:
            index.remove(cid)


def suggestions(candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
    """attributes["possible_duplicates"]: the best three, each with its reason in both languages
    (a card shows the one of its own language: reason_zh / reason_en)."""
    return [{"customer_id": c.customer_id, "score": round(c.score, 3), "reason": c.reason[:300],
             "reason_zh": c.reason_in("zh")[:300], "reason_en": c.reason_in("en")[:300]}
            for c in candidates[:3]]
