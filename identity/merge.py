"""Lossless merge of two customers, and its undo.

The survivor takes every identity, lead (with its stage history and activities) and activity of
the merged customer; attributes are merged, and where both had a value the merged one's is kept
under attributes["merged_from"][merged id]; empty survivor fields are filled from the merged
record. The merged customer becomes a tombstone (status "merged", merged_into = survivor):
nothing is deleted. The Merge row holds a full snapshot of both records and of what moved, and
undo_merge puts everything back. An AuditEntry names who merged (and who undid) what.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from identity.customers import normalized_columns, refresh_index
from store.models import Activity, AuditEntry, Customer, DistinctPair, Identity, Lead, Merge, StageHistory

if TYPE_CHECKING:
    from identity.index import IdentityIndex
    from crm.sql_store import SqlCRMStore

CUSTOMER_COLUMNS = ("id", "external_id", "display_name", "company", "title", "city", "address", "normalized_name",
                    "normalized_company", "owner_id", "status", "merged_into", "do_not_contact", "attributes",
                    "version", "created_at", "updated_at")
# Fields the survivor fills from the merged record when its own is empty.
FILLABLE = ("display_name", "company", "title", "city", "address", "owner_id", "external_id")
SNAPSHOT_VERSION = 1


class MergeError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class MergeResult:
    merge_id: int
    survivor_id: int
    merged_id: int
    identities: int
    leads: int
    activities: int
    stage_history: int
    conflicts: dict[str, Any] = field(default_factory=dict)  # field -> the merged record's value kept aside


@dataclass(frozen=True, slots=True)
class UndoResult:
    merge_id: int
    survivor_id: int
    merged_id: int
    identities: int
    leads: int
    activities: int
    kept_on_survivor: tuple[str, ...] = ()  # survivor fields changed since the merge: left as they are


def _dump(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"__dt__": value.isoformat()}
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


def _load(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__dt__"}:
            return datetime.fromisoformat(value["__dt__"])
        return {k: _load(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_load(v) for v in value]
    return value


def customer_snapshot(row: Customer) -> dict[str, Any]:
    return {col: _dump(getattr(row, col)) for col in CUSTOMER_COLUMNS}


def _row_snapshot(row: Any) -> dict[str, Any]:
    return {c.name: _dump(getattr(row, c.key)) for c in row.__table__.columns}


async def _locked(session: AsyncSession, customer_id: int) -> Customer | None:
    # FOR UPDATE on PostgreSQL: two people merging the same pair at once serialise here.
    return (await session.execute(
        select(Customer).where(Customer.id == customer_id).with_for_update())).scalar_one_or_none()


async def _is_distinct(session: AsyncSession, a: int, b: int) -> bool:
    lo, hi = min(a, b), max(a, b)
    return (await session.execute(select(DistinctPair.id).where(
        DistinctPair.customer_a == lo, DistinctPair.customer_b == hi))).scalar_one_or_none() is not None


async def merge_customers(store: "SqlCRMStore", survivor_id: int, merged_id: int, actor: str, *,
                          reason: str = "", force: bool = False,
                          index: "IdentityIndex | None" = None) -> MergeResult:
    """Merges merged_id into survivor_id. Refuses a pair someone marked distinct unless force."""
    if survivor_id == merged_id:
        raise MergeError("cannot merge a customer into itself")
    now = store.clock.now()
    async with store.sessions() as session, session.begin():
        survivor = await _locked(session, survivor_id)
        merged = await _locked(session, merged_id)
        if survivor is None or merged is None:
            raise MergeError(f"customer {survivor_id if survivor is None else merged_id} does not exist")
        for row in (survivor, merged):
            if row.status == "merged":
                raise MergeError(f"customer {row.id} is already merged into {row.merged_into}")
        if not force and await _is_distinct(session, survivor_id, merged_id):
            raise MergeError(f"customers {survivor_id} and {merged_id} were marked as different people")
        survivor_before = customer_snapshot(survivor)
        merged_before = customer_snapshot(merged)
        identities = (await session.execute(select(Identity).where(Identity.customer_id == merged_id))).scalars().all()
        leads = (await session.execute(select(Lead).where(Lead.customer_id == merged_id))).scalars().all()
        activities = (await session.execute(
            select(Activity).where(Activity.customer_id == merged_id))).scalars().all()
        lead_ids = [lead.id for lead in leads]
        history = (await session.execute(select(StageHistory.id).where(
            StageHistory.lead_id.in_(lead_ids)))).scalars().all() if lead_ids else []

        # Fields: fill the survivor's blanks, keep the merged record's differing values aside.
        changes: dict[str, list[Any]] = {}
        kept_aside: dict[str, Any] = {}
        for name in FILLABLE:
            mine, theirs = getattr(survivor, name), getattr(merged, name)
            if theirs in (None, "") or mine == theirs:
                continue
            if mine in (None, ""):
                if name == "external_id":
                    continue  # unique: the tombstone keeps its own, imports follow it to the survivor
                changes[name] = [mine, theirs]
                setattr(survivor, name, theirs)
            else:
                kept_aside[name] = theirs
        if merged.do_not_contact and not survivor.do_not_contact:
            changes["do_not_contact"] = [False, True]
            survivor.do_not_contact = True  # an opt-out survives a merge
        attrs = dict(survivor.attributes or {})
        added_keys: list[str] = []
        for key, value in (merged.attributes or {}).items():
            if key == "merged_from":
                continue
            if key not in attrs:
                attrs[key] = value
                added_keys.append(key)
            elif attrs[key] != value:
                kept_aside.setdefault("attributes", {})[key] = value
        history_from = dict(attrs.get("merged_from") or {})
        carried: list[str] = []
        for old_id, old_values in ((merged.attributes or {}).get("merged_from") or {}).items():
            if old_id not in history_from:
                history_from[old_id] = old_values
                carried.append(old_id)
        if kept_aside:
            history_from[str(merged_id)] = kept_aside
        if history_from:
            attrs["merged_from"] = history_from
        survivor.attributes = attrs
        if "display_name" in changes or "company" in changes:
            for col, value in normalized_columns(survivor.display_name, survivor.company).items():
                if getattr(survivor, col) != value:
                    changes[col] = [getattr(survivor, col), value]
                    setattr(survivor, col, value)
        survivor.updated_at = now
        survivor.version += 1

        # Move everything; the merged record stays as a tombstone.
        ident_ids = [i.id for i in identities]
        activity_ids = [a.id for a in activities]
        if ident_ids:
            await session.execute(update(Identity).where(Identity.id.in_(ident_ids)).values(customer_id=survivor_id))
        if lead_ids:
            await session.execute(update(Lead).where(Lead.id.in_(lead_ids)).values(customer_id=survivor_id))
        if activity_ids:
            await session.execute(update(Activity).where(Activity.id.in_(activity_ids)).values(customer_id=survivor_id))
        merged.status = "merged"
        merged.merged_into = survivor_id
        merged.updated_at = now
        merged.version += 1
        snapshot = {
            "version": SNAPSHOT_VERSION,
            "survivor_before": survivor_before,
            "merged_before": merged_before,
            "survivor_changes": _dump(changes),
            "attribute_keys_added": added_keys,
            "attribute_values_added": _dump({k: attrs[k] for k in added_keys}),
            "merged_from_added": _dump(kept_aside) if kept_aside else None,
            "merged_from_carried": carried,
            "identities": [_row_snapshot(i) for i in identities],
            "leads": lead_ids,
            "activities": activity_ids,
            "stage_history": list(history),
        }
        row = Merge(survivor_id=survivor_id, merged_id=merged_id, snapshot=snapshot, actor=actor,
                    reason=reason, created_at=now)
        session.add(row)
        await session.flush()
        session.add(AuditEntry(at=now, actor=actor, action="customer.merged", subject_type="customer",
                               subject_id=str(survivor_id),
                               data={"merge_id": row.id, "survivor": survivor_id, "merged": merged_id,
                                     "reason": reason, "identities": len(ident_ids), "leads": len(lead_ids),
                                     "activities": len(activity_ids), "forced": force}))
        result = MergeResult(row.id, survivor_id, merged_id, len(ident_ids), len(lead_ids), len(activity_ids),
                             len(history), kept_aside)
    if index is not None:
        await refresh_index(store, index, [survivor_id, merged_id])
    return result


async def undo_merge(store: "SqlCRMStore", merge_id: int, actor: str, *,
                     index: "IdentityIndex | None" = None) -> UndoResult:
    """Restores both customers as they were before the merge and moves back what moved.

    Identities, leads and activities added to the survivor after the merge stay with it; a
    survivor field edited since the merge keeps the edit (and is named in kept_on_survivor)."""
    now = store.clock.now()
    async with store.sessions() as session, session.begin():
        row = (await session.execute(select(Merge).where(Merge.id == merge_id).with_for_update())).scalar_one_or_none()
        if row is None:
            raise MergeError(f"merge {merge_id} does not exist")
        if row.undone_at is not None:
            raise MergeError(f"merge {merge_id} was already undone")
        snap = row.snapshot
        survivor = await _locked(session, row.survivor_id)
        merged = await _locked(session, row.merged_id)
        if survivor is None or merged is None:
            raise MergeError("a customer of this merge no longer exists")
        if merged.status != "merged" or merged.merged_into != row.survivor_id:
            raise MergeError(f"customer {merged.id} is no longer a tombstone of {row.survivor_id}")
        later = (await session.execute(select(Merge.id).where(
            Merge.merged_id == row.survivor_id, Merge.undone_at.is_(None), Merge.id > row.id))).scalar_one_or_none()
        if later is not None:
            raise MergeError(f"customer {row.survivor_id} was merged again since (merge {later}); undo that first")

        ident_ids = [i["id"] for i in snap.get("identities", [])]
        moved = {"identities": 0, "leads": 0, "activities": 0}
        for model, ids, key in ((Identity, ident_ids, "identities"), (Lead, snap.get("leads", []), "leads"),
                                (Activity, snap.get("activities", []), "activities")):
            if ids:
                result = await session.execute(update(model).where(
                    model.id.in_(ids), model.customer_id == row.survivor_id).values(customer_id=row.merged_id))
                moved[key] = result.rowcount or 0

        # The merged customer: exactly as it was, with a newer version (optimistic locks).
        before = _load(snap["merged_before"])
        version = merged.version
        for col in CUSTOMER_COLUMNS:
            if col != "id":
                setattr(merged, col, before[col])
        merged.version = max(version, before["version"]) + 1

        # The survivor: revert what the merge changed, unless it was edited since.
        kept: list[str] = []
        for name, (was, became) in _load(snap.get("survivor_changes") or {}).items():
            if getattr(survivor, name) == became:
                setattr(survivor, name, was)
            else:
                kept.append(name)
        attrs = dict(survivor.attributes or {})
        for key, value in _load(snap.get("attribute_values_added") or {}).items():
            if key in attrs and attrs[key] == value:
                del attrs[key]
            elif key in attrs:
                kept.append(f"attributes.{key}")
        history = dict(attrs.get("merged_from") or {})
        if snap.get("merged_from_added") is not None:
            history.pop(str(row.merged_id), None)
        for old_id in snap.get("merged_from_carried", []):
            history.pop(old_id, None)
        if history:
            attrs["merged_from"] = history
        else:
            attrs.pop("merged_from", None)
        survivor.attributes = attrs
        survivor.version += 1
        survivor.updated_at = now
        row.undone_at = now
        session.add(AuditEntry(at=now, actor=actor, action="customer.merge_undone", subject_type="customer",
                               subject_id=str(row.survivor_id),
                               data={"merge_id": row.id, "survivor": row.survivor_id, "merged": row.merged_id,
                                     "merged_by": row.actor, **moved, "kept_on_survivor": kept}))
        result = UndoResult(row.id, row.survivor_id, row.merged_id, moved["identities"], moved["leads"],
                            moved["activities"], tuple(kept))
    if index is not None:
        await refresh_index(store, index, [result.survivor_id, result.merged_id])
    return result


async def mark_distinct(store: "SqlCRMStore", a: int, b: int, actor: str, *,
                        index: "IdentityIndex | None" = None) -> bool:
    """Records that two customers are different people: they are never suggested as duplicates
    of each other again. True when newly recorded."""
    if a == b:
        raise MergeError("a customer is not distinct from itself")
    lo, hi = min(a, b), max(a, b)
    now = store.clock.now()
    async with store.sessions() as session, session.begin():
        if await _is_distinct(session, lo, hi):
            created = False
        else:
            session.add(DistinctPair(customer_a=lo, customer_b=hi, actor=actor, created_at=now))
            session.add(AuditEntry(at=now, actor=actor, action="customer.marked_distinct", subject_type="customer",
                                   subject_id=str(lo), data={"customers": [lo, hi]}))
            created = True
    if index is not None:
        index.add_distinct(lo, hi)
    return created
