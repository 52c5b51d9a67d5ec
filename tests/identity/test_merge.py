"""Merge is lossless and undo restores exactly: the whole database is compared before and after."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from store import dto
from identity.merge import MergeError, mark_distinct, merge_customers, undo_merge
from identity.service import find_duplicates
from store.models import (Activity, AuditEntry, Customer, DistinctPair, Identity, Lead, Merge, Rep,
                               StageHistory)

TABLES = (Customer, Identity, Lead, Activity, StageHistory)


async def _state(store) -> dict[str, dict[int, dict]]:
    out: dict[str, dict[int, dict]] = {}
    async with store.sessions() as session:
        for model in TABLES:
            rows = (await session.execute(select(model))).scalars().all()
            out[model.__tablename__] = {r.id: {c.key: getattr(r, c.key) for c in model.__table__.columns} for r in rows}
    return out


def _without(state: dict, table: str, *cols: str) -> dict:
    return {rid: {k: v for k, v in row.items() if k not in cols} for rid, row in state[table].items()}


async def _two_customers(store, clock) -> tuple[int, int]:
    now = clock.now()
    async with store.sessions() as session, session.begin():
        rep_a = Rep(external_id="r1", name="Alice", wecom_userid="alice", created_at=now, updated_at=now)
        rep_b = Rep(external_id="r2", name="Bob", wecom_userid="bob", created_at=now, updated_at=now)
        session.add_all([rep_a, rep_b])
        await session.flush()
        survivor = Customer(external_id="S", display_name="王小明", company="华为技术有限公司", title="", city="深圳",
                            owner_id=rep_a.id, attributes={"level": "A", "source": "expo"},
                            created_at=now, updated_at=now)
        merged = Customer(external_id="M", display_name="Wang Xiaoming", company="华为", title="采购总监", city="深圳",
                          address="深圳市龙岗区坂田", owner_id=rep_b.id, do_not_contact=True,
                          attributes={"level": "B", "wechat": "wxm_88", "merged_from": {"77": {"title": "old"}}},
                          created_at=now - timedelta(days=3), updated_at=now - timedelta(days=1))
        session.add_all([survivor, merged])
        await session.flush()
        session.add_all([
            Identity(customer_id=survivor.id, kind="phone", value="+8613812345678", strong=True, created_at=now),
            Identity(customer_id=merged.id, kind="email", value="wxm@huawei.com", strong=True, created_at=now),
            Identity(customer_id=merged.id, kind="phone", value="+862161234567", strong=False, created_at=now),
            Identity(customer_id=merged.id, kind="unionid", value="oWXM", strong=True, created_at=now),
        ])
        return survivor.id, merged.id


async def _lead_for(store, clock, customer_id: int, stage: str) -> int:
    lead, _ = await store.create_lead(dto.LeadInput(fields={"name": "x", "note": stage}))
    now = clock.now()
    async with store.sessions() as session, session.begin():
        row = await session.get(Lead, lead.id)
        row.customer_id = customer_id
        row.stage = stage
        session.add(StageHistory(lead_id=lead.id, from_stage="", to_stage=stage, actor="rep:r2", at=now))
        session.add(Activity(lead_id=lead.id, customer_id=customer_id, kind="call", actor="rep:r2", body="called", at=now))
    return lead.id


async def test_merge_keeps_everything_and_undo_restores_exactly(store, clock) -> None:
    survivor_id, merged_id = await _two_customers(store, clock)
    lead_s = await _lead_for(store, clock, survivor_id, "qualified")
    lead_m1 = await _lead_for(store, clock, merged_id, "proposal")
    lead_m2 = await _lead_for(store, clock, merged_id, "new")
    async with store.sessions() as session, session.begin():
        session.add(Activity(customer_id=merged_id, kind="note", body="customer-level note", at=clock.now()))
    before = await _state(store)

    clock.advance(60)
    result = await merge_customers(store, survivor_id, merged_id, "manager:m1", reason="same mobile")
    assert (result.identities, result.leads, result.activities, result.stage_history) == (3, 2, 3, 2)

    survivor = await store.get_customer(survivor_id)
    tombstone = await store.get_customer(merged_id)
    assert (tombstone.status, tombstone.merged_into) == ("merged", survivor_id)
    assert set(survivor.identities) == {("phone", "+8613812345678"), ("email", "wxm@huawei.com"),
                                        ("phone", "+862161234567"), ("unionid", "oWXM")}
    assert tombstone.identities == ()
    assert survivor.title == "采购总监" and survivor.address == "深圳市龙岗区坂田"  # blanks filled
    assert survivor.display_name == "王小明" and survivor.do_not_contact  # an opt-out survives
    assert survivor.attributes["level"] == "A" and survivor.attributes["wechat"] == "wxm_88"
    aside = survivor.attributes["merged_from"][str(merged_id)]
    assert aside["display_name"] == "Wang Xiaoming" and aside["company"] == "华为"
    assert aside["attributes"] == {"level": "B"} and aside["owner_id"] is not None
    assert survivor.attributes["merged_from"]["77"] == {"title": "old"}  # older history carried over
    after = await _state(store)
    assert {lid: row["customer_id"] for lid, row in after["leads"].items()} == {
        lead_s: survivor_id, lead_m1: survivor_id, lead_m2: survivor_id}
    assert all(a["customer_id"] == survivor_id for a in after["activities"].values())
    assert after["stage_history"] == before["stage_history"]  # travels with its leads, untouched
    async with store.sessions() as session:
        merge_row = await session.get(Merge, result.merge_id)
        audit = (await session.execute(select(AuditEntry).where(AuditEntry.action == "customer.merged"))).scalar_one()
    assert merge_row.snapshot["merged_before"]["display_name"] == "Wang Xiaoming"
    assert len(merge_row.snapshot["identities"]) == 3
    assert audit.actor == "manager:m1" and audit.data["merged"] == merged_id and audit.data["survivor"] == survivor_id

    clock.advance(60)
    undone = await undo_merge(store, result.merge_id, "manager:m2")
    assert (undone.identities, undone.leads, undone.activities) == (3, 2, 3) and undone.kept_on_survivor == ()
    restored = await _state(store)
    for table in ("identities", "leads", "activities", "stage_history"):
        assert restored[table] == before[table], table
    # Customers: every column as before; only the optimistic-lock version moved on.
    assert _without(restored, "customers", "version", "updated_at") == _without(before, "customers", "version",
                                                                               "updated_at")
    assert restored["customers"][merged_id]["updated_at"] == before["customers"][merged_id]["updated_at"]
    assert all(restored["customers"][c]["version"] > before["customers"][c]["version"] for c in (survivor_id, merged_id))
    async with store.sessions() as session:
        assert (await session.get(Merge, result.merge_id)).undone_at is not None
        undo_audit = (await session.execute(select(AuditEntry).where(
            AuditEntry.action == "customer.merge_undone"))).scalar_one()
    assert undo_audit.actor == "manager:m2" and undo_audit.data["merged_by"] == "manager:m1"
    with pytest.raises(MergeError):
        await undo_merge(store, result.merge_id, "manager:m2")


async def test_undo_keeps_what_happened_since(store, clock) -> None:
    survivor_id, merged_id = await _two_customers(store, clock)
    result = await merge_customers(store, survivor_id, merged_id, "manager:m1")
    async with store.sessions() as session, session.begin():
        survivor = await session.get(Customer, survivor_id)
        survivor.title = "总经理"  # edited after the merge
        session.add(Identity(customer_id=survivor_id, kind="external_userid", value="wmLater", strong=True,
                             created_at=clock.now()))
    undone = await undo_merge(store, result.merge_id, "manager:m1")
    assert undone.kept_on_survivor == ("title",)
    survivor = await store.get_customer(survivor_id)
    assert survivor.title == "总经理" and ("external_userid", "wmLater") in survivor.identities
    merged = await store.get_customer(merged_id)
    assert ("unionid", "oWXM") in merged.identities and merged.status == "active"


async def test_merge_guards(store, clock) -> None:
    survivor_id, merged_id = await _two_customers(store, clock)
    with pytest.raises(MergeError):
        await merge_customers(store, survivor_id, survivor_id, "m")
    assert await mark_distinct(store, merged_id, survivor_id, "rep:r1")
    assert not await mark_distinct(store, survivor_id, merged_id, "rep:r1")  # idempotent
    with pytest.raises(MergeError, match="different people"):
        await merge_customers(store, survivor_id, merged_id, "m")
    result = await merge_customers(store, survivor_id, merged_id, "m", force=True)
    with pytest.raises(MergeError, match="already merged"):
        await merge_customers(store, survivor_id, merged_id, "m")
    assert result.merge_id
    async with store.sessions() as session:
        pair = (await session.execute(select(DistinctPair))).scalar_one()
    assert (pair.customer_a, pair.customer_b) == (min(survivor_id, merged_id), max(survivor_id, merged_id))


async def test_chained_merges_undo_in_order(store, clock) -> None:
    a, b = await _two_customers(store, clock)
    async with store.sessions() as session, session.begin():
        c = Customer(display_name="王小明", company="华为", attributes={}, created_at=clock.now(), updated_at=clock.now())
        session.add(c)
        await session.flush()
        c_id = c.id
    first = await merge_customers(store, b, c_id, "m")
    second = await merge_customers(store, a, b, "m")
    with pytest.raises(MergeError, match="undo that first"):
        await undo_merge(store, first.merge_id, "m")
    await undo_merge(store, second.merge_id, "m")
    await undo_merge(store, first.merge_id, "m")
    assert (await store.get_customer(c_id)).status == "active"


async def test_distinct_pairs_suppress_duplicate_suggestions(store, clock) -> None:
    await store.import_customers([{"id": "A", "name": "张伟", "company": "华为技术有限公司"},
                                  {"id": "B", "name": "张伟", "company": "华为技术"}])
    async with store.sessions() as session:
        ids = {c.external_id: c.id for c in (await session.execute(select(Customer))).scalars()}
    assert (await find_duplicates(store, ids["A"])).customer_id == ids["B"]
    await mark_distinct(store, ids["A"], ids["B"], "rep:r1")
    assert (await find_duplicates(store, ids["A"])).customer_id is None
