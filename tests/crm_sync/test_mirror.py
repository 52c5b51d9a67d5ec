"""A lead's whole life, mirrored to a reference receiver in order, signed, without echo; and
nothing lost while the receiver is down."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from store.db import session_factory
from store.dto import LeadInput
from identity.merge import merge_customers
from identity.service import link_identity
from crm.leads import stages_from_settings
from store.models import OutboxItem
from leadbot.settings import DEFAULT_STAGES
from tests.crm_sync.conftest import CRM_AUTH, INTAKE_AUTH, deliver


async def _rep_id(cli, external_id: str) -> int:
    return next(r.id for r in await cli.ctx.store.list_reps() if r.external_id == external_id)


async def _webhook_rows(engine) -> list[OutboxItem]:
    async with session_factory(engine)() as s:
        return list((await s.execute(select(OutboxItem).where(OutboxItem.channel == "webhook")
                                     .order_by(OutboxItem.id))).scalars())


async def test_whole_life_mirrored_in_order_with_valid_signatures(crm, receiver, engine, clock) -> None:
    resp = await crm.post("/api/v1/leads", json={"name": "王小明", "phone": "13812345678", "company": "上海某某科技",
                                                 "amount": "1.2万"}, headers=INTAKE_AUTH)
    assert resp.status == 201
    lead = await resp.json()
    lead_id = lead["id"]
    actions = crm.ctx.services.lead_actions
    stages = stages_from_settings(DEFAULT_STAGES)
    await crm.ctx.services.processor.drain()  # routing runs from the inbox
    owner = (await crm.ctx.store.get_lead(lead_id)).owner_id
    assert owner is not None  # routed

    assert (await actions.claim(lead_id, owner, f"rep:{owner}")).outcome == "claimed"
    assert (await actions.advance(lead_id, stages, f"rep:{owner}")).outcome == "advanced"
    other = next(r.id for r in await crm.ctx.store.list_reps() if r.id != owner)
    assert await actions.reassign(lead_id, other, "manager", "vacation") is not None
    customer_id = (await crm.ctx.store.get_lead(lead_id)).customer_id
    await link_identity(crm.ctx.store, customer_id, "email", "wxm@example.com", "rep:1")
    dup, _ = await crm.ctx.store.create_lead(LeadInput(fields={"name": "王小明", "phone": "021-55556666"}))
    await merge_customers(crm.ctx.store, customer_id, dup.customer_id, "rep:1", force=True)

    # Everything was written to the outbox in the same transactions; now the worker delivers.
    await deliver(crm)

    assert receiver.refused == []
    assert receiver.types_for("lead", lead_id) == [
        "lead.created", "lead.assigned", "lead.claimed", "lead.stage_advanced", "lead.reassigned"]
    versions = [e["version"] for e in receiver.applied if e["entity"] == {"type": "lead", "id": lead_id,
                                                                         "external_id": None}]
    assert versions == sorted(versions) and versions[0] == 1
    assert receiver.types_for("customer", customer_id) == ["customer.identity_linked", "customer.merged"]
    assert receiver.types_for("customer", dup.customer_id)[-1] == "customer.merged"

    # The mirror equals leadbot's own state.
    stored = await crm.ctx.store.get_lead(lead_id)
    mirrored = receiver.mirror[("lead", lead_id)]
    assert mirrored["owner"]["id"] == stored.owner_id == other
    assert mirrored["stage"] == stored.stage == "线索验证"
    assert mirrored["status"] == stored.status and mirrored["version"] == stored.version
    assert mirrored["amount"] == 12000.0
    merged = receiver.mirror[("customer", dup.customer_id)]
    assert merged["status"] == "merged" and merged["merged_into"]["id"] == customer_id
    assert {"kind": "email", "value": "wxm@example.com"} in receiver.mirror[("customer", customer_id)]["identities"]

    rows = await _webhook_rows(engine)
    assert rows and all(r.state == "sent" for r in rows)
    # Re-delivering everything (a crash before mark_sent) is absorbed by event-id dedupe.
    assert len({r.payload["event"]["event_id"] for r in rows}) == len(rows)


async def test_nothing_lost_while_the_receiver_is_down(crm, receiver, engine, clock) -> None:
    receiver.down = True
    resp = await crm.post("/api/v1/leads", json={"name": "李雷", "phone": "13900001111"}, headers=INTAKE_AUTH)
    lead_id = (await resp.json())["id"]
    actions = crm.ctx.services.lead_actions
    await deliver(crm)
    owner = (await crm.ctx.store.get_lead(lead_id)).owner_id
    await actions.claim(lead_id, owner, "rep")  # a change made during the outage
    stages = stages_from_settings(DEFAULT_STAGES)
    for _ in range(4):  # the outage lasts several retry rounds
        await deliver(crm)
        clock.advance(timedelta(seconds=70))
    await actions.advance(lead_id, stages, "rep")
    await deliver(crm)
    assert receiver.applied == [] and receiver.requests >= 4
    # Only the head of each entity's queue was tried: later events waited their turn.
    rows = await _webhook_rows(engine)
    assert [r.state for r in rows] == ["pending"] * len(rows)
    assert rows[0].attempts >= 4 and all(r.attempts == 0 for r in rows[1:])

    receiver.down = False
    for _ in range(12):
        clock.advance(timedelta(seconds=300))
        await deliver(crm)
    assert receiver.refused == []
    assert receiver.types_for("lead", lead_id) == ["lead.created", "lead.assigned", "lead.claimed",
                                                   "lead.stage_advanced"]
    assert all(r.state == "sent" for r in await _webhook_rows(engine))


async def test_crm_changes_are_not_echoed_back(crm, receiver, engine) -> None:
    resp = await crm.put("/api/v1/customers/C-1", json={"name": "张三", "company": "北京某某", "phone": "13711112222"},
                         headers=CRM_AUTH)
    assert resp.status == 201, await resp.text()
    resp = await crm.put("/api/v1/leads/L-1", json={"name": "张三", "customer": "C-1", "amount": 5000,
                                                     "owner": "r1"}, headers=CRM_AUTH)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    await crm.put("/api/v1/leads/L-1", json={"name": "张三丰"}, headers=CRM_AUTH)
    await crm.post("/api/v1/leads/L-1/stage", json={"stage": "痛点诊断"}, headers=CRM_AUTH)
    await crm.post("/api/v1/customers/C-1/do-not-contact", json={"do_not_contact": True}, headers=CRM_AUTH)
    await deliver(crm)
    assert await _webhook_rows(engine) == [] and receiver.applied == []
    # ... but what leadbot then does on its own is mirrored.
    lead_id = body["lead"]["id"]
    owner = await _rep_id(crm, "r1")
    await crm.ctx.services.lead_actions.claim(lead_id, owner, "rep:r1")
    await deliver(crm)
    assert receiver.types_for("lead", lead_id) == ["lead.claimed"]
    event = receiver.applied[0]
    assert event["entity"]["external_id"] == "L-1"
    assert event["data"]["lead"]["customer"]["external_id"] == "C-1"
    assert event["data"]["lead"]["name"] == "张三丰" and event["data"]["lead"]["stage"] == "痛点诊断"
