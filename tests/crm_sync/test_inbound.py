"""The CRM pushes its truth: upserts by its own ids, ownership, versions, clear 4xx errors."""

from __future__ import annotations

from sqlalchemy import select

from store.db import session_factory
from store.models import AuditEntry, Customer, Lead, OutboxItem
from tests.crm_sync.conftest import CRM_AUTH, INTAKE_AUTH, deliver


async def _put(cli, path: str, body, headers=None):
    resp = await cli.put(path, json=body, headers={**CRM_AUTH, **(headers or {})})
    return resp.status, await resp.json()


async def test_crm_upsert_is_reflected_and_idempotent(crm) -> None:
    status, body = await _put(crm, "/api/v1/leads/CRM-77", {"name": "赵六", "company": "杭州某某", "amount": "3万",
                                                             "phone": "13600001111", "extra": {"crm_score": 80}})
    assert status == 201 and body["created"] is True
    lead_id = body["lead"]["id"]
    await crm.ctx.services.processor.drain()  # routing runs from the inbox, after the answer
    # A CRM lead is no intake source's: the intake API answers it as missing to every token.
    assert (await crm.get(f"/api/v1/leads/{lead_id}", headers=INTAKE_AUTH)).status == 404
    shown = (await crm.ctx.store.get_lead(lead_id)).to_json()
    assert shown["external_id"] == "CRM-77" and shown["name"] == "赵六" and shown["amount"] == 30000.0
    assert shown["extra"]["crm_score"] == 80 and shown["owner_id"] is not None  # routed like any new lead

    status, again = await _put(crm, "/api/v1/leads/CRM-77", {"name": "赵六", "company": "杭州某某", "amount": "3万"})
    assert status == 200 and again["changed"] == [] and again["version"] == shown["version"]

    status, changed = await _put(crm, "/api/v1/leads/CRM-77", {"company": "杭州某某集团"})
    assert status == 200 and changed["changed"] == ["company"] and changed["version"] == shown["version"] + 1
    assert (await crm.ctx.store.get_lead(lead_id)).to_json()["company"] == "杭州某某集团"
    resp = await crm.get("/api/v1/leads/external/CRM-77", headers=CRM_AUTH)
    assert resp.status == 200 and resp.headers["ETag"] == f'"{changed["version"]}"'

    async with session_factory(crm.ctx.engine)() as s:
        audits = (await s.execute(select(AuditEntry).where(AuditEntry.action.like("crm.%"))
                                  .order_by(AuditEntry.id))).scalars().all()
    assert [a.action for a in audits] == ["crm.lead.created", "crm.lead.updated"]
    assert all(a.data["origin"] == "crm" for a in audits)
    assert "13600001111" not in str(audits[0].data)  # phones are masked in the audit trail


async def test_crm_change_updates_the_delivered_cards(crm) -> None:
    status, body = await _put(crm, "/api/v1/leads/CRM-9", {"name": "钱七", "company": "苏州某某"})
    assert status == 201
    await deliver(crm)  # the offer card reaches its rep (FakeSender records it)
    status, _ = await _put(crm, "/api/v1/leads/CRM-9", {"company": "苏州某某股份"})
    async with session_factory(crm.ctx.engine)() as s:
        updates = (await s.execute(select(OutboxItem).where(OutboxItem.kind == "card_update"))).scalars().all()
    assert updates and "苏州某某股份" in str(updates[0].payload)


async def test_conflict_resolved_by_ownership_rules(crm) -> None:
    status, body = await _put(crm, "/api/v1/leads/CRM-5", {"name": "孙八", "amount": 1000})
    await crm.ctx.services.processor.drain()  # routed from the inbox, after the answer
    lead_id = body["lead"]["id"]
    owner = {"id": (await crm.ctx.store.get_lead(lead_id)).owner_id}
    await crm.ctx.services.lead_actions.claim(lead_id, owner["id"], "rep")
    # The CRM sends its whole record: it owns name and amount; leadbot owns owner and stage.
    status, res = await _put(crm, "/api/v1/leads/CRM-5", {"name": "孙八", "amount": 2000, "owner": "r2",
                                                          "stage": "方案共创", "city": "南京"})
    assert status == 200
    assert res["changed"] == ["city", "amount"]
    assert {i["field"] for i in res["ignored"]} == {"owner", "stage"}
    assert res["lead"]["owner"]["id"] == owner["id"] and res["lead"]["status"] == "claimed"
    assert res["lead"]["amount"] == 2000 and res["lead"]["stage"] == ""

    # Concurrent edit: the CRM writes with the version it saw; leadbot moved on meanwhile.
    seen = res["version"]
    await crm.ctx.services.lead_actions.reassign(lead_id, owner["id"], "manager")
    status, err = await _put(crm, "/api/v1/leads/CRM-5", {"amount": 3000}, {"If-Match": f'"{seen}"'})
    assert status == 409 and err["error"] == "version_conflict" and err["current_version"] == seen + 1
    assert err["current"]["amount"] == 2000  # not lost, not overwritten
    status, ok = await _put(crm, "/api/v1/leads/CRM-5", {"amount": 3000, "version": err["current_version"]})
    assert status == 200 and ok["lead"]["amount"] == 3000

    # An explicit command may change what leadbot owns.
    resp = await crm.post("/api/v1/leads/CRM-5/owner", json={"owner": "r2"}, headers=CRM_AUTH)
    moved = await resp.json()
    assert resp.status == 200 and moved["lead"]["owner"]["external_id"] == "r2"
    assert moved["lead"]["status"] == "assigned" and moved["lead"]["sla"]["claimed_at"] is None
    resp = await crm.post("/api/v1/leads/CRM-5/stage", json={"stage": "价值共识"}, headers=CRM_AUTH)
    assert (await resp.json())["lead"]["stage"] == "价值共识"


async def test_customers_upsert_and_do_not_contact(crm) -> None:
    status, body = await _put(crm, "/api/v1/customers/C-9", {"name": "周九", "phone": "13500002222",
                                                              "attributes": {"tier": "A"}})
    assert status == 201 and body["customer"]["identities"][0]["kind"] == "phone"
    resp = await crm.post("/api/v1/customers/C-9/do-not-contact", json={"do_not_contact": True}, headers=CRM_AUTH)
    assert resp.status == 200 and (await resp.json())["customer"]["do_not_contact"] is True
    # Another customer may not take the same mobile.
    status, err = await _put(crm, "/api/v1/customers/C-10", {"name": "吴十", "phone": "13500002222"})
    assert status == 409 and err["error"] == "identity_conflict" and err["field"] == "phone"
    resp = await crm.get("/api/v1/customers/C-9", headers=CRM_AUTH)
    assert (await resp.json())["customer"]["name"] == "周九"


async def test_clear_4xx_errors(crm) -> None:
    resp = await crm.put("/api/v1/leads/X-1", json={"name": "a"})
    assert resp.status == 401 and (await resp.json())["error"] == "unauthorized"
    resp = await crm.put("/api/v1/leads/X-1", json={"name": "a"}, headers={"Authorization": "Bearer nope"})
    assert resp.status == 401
    cases = [
        ({"nmae": "a"}, "nmae"),
        ({"amount": "lots"}, "amount"),
        ({"stage": "不存在"}, "stage"),
        ({"owner": "nobody"}, "owner"),
        ({"customer": "C-404"}, "customer"),
        ({"name": ["a"]}, "name"),
        ({"name": "a", "version": "x"}, "version"),
    ]
    for body, field in cases:
        status, err = await _put(crm, "/api/v1/leads/X-1", body)
        assert status == 400 and err["field"] == field, (body, err)
    resp = await crm.put("/api/v1/leads/X-1", data=b"{not json", headers=CRM_AUTH)
    assert resp.status == 400 and "JSON" in (await resp.json())["message"]
    status, err = await _put(crm, "/api/v1/leads/X-404", {"name": "a"}, {"If-Match": '"3"'})
    assert status == 404
    resp = await crm.post("/api/v1/leads/X-404/stage", json={"stage": "价值共识"}, headers=CRM_AUTH)
    assert resp.status == 404
    resp = await crm.get("/api/v1/customers/nope", headers=CRM_AUTH)
    assert resp.status == 404
    # The intake token works too when [crm_bridge] api_tokens is empty; here it is set, so not.
    resp = await crm.put("/api/v1/leads/X-1", json={"name": "a"}, headers=INTAKE_AUTH)
    assert resp.status == 401


async def test_crm_links_its_id_to_a_lead_leadbot_already_has(crm) -> None:
    resp = await crm.post("/api/v1/leads", json={"name": "钱七", "phone": "13700007777"}, headers=INTAKE_AUTH)
    lead_id = (await resp.json())["id"]
    status, body = await _put(crm, "/api/v1/leads/CRM-900", {"leadbot_id": lead_id, "amount": 5000})
    assert status == 200 and body["created"] is False and body["lead"]["id"] == lead_id
    shown = await (await crm.get(f"/api/v1/leads/{lead_id}", headers=INTAKE_AUTH)).json()
    assert shown["external_id"] == "CRM-900" and shown["amount"] == 5000
    status, err = await _put(crm, "/api/v1/leads/CRM-901", {"leadbot_id": lead_id})
    assert status == 400 and "already linked" in err["message"]
    status, err = await _put(crm, "/api/v1/leads/CRM-902", {"leadbot_id": 999999})
    assert status == 404


async def test_without_crm_tokens_the_inbound_api_is_off(aiohttp_client, engine, clock) -> None:
    """A lead source's intake token never writes CRM records: with no [crm_bridge] api_tokens the
    inbound CRM API refuses everyone, and says which setting opens it."""
    from bot.app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(crm_bridge={}), clock=clock, engine=engine, start_workers=False)
    cli = await aiohttp_client(app)
    for method, path, body in (("PUT", "/api/v1/leads/X-1", {"name": "a"}),
                               ("PUT", "/api/v1/customers/C-1", {"name": "a"}),
                               ("GET", "/api/v1/customers/C-1", None)):
        for auth in (INTAKE_AUTH, CRM_AUTH, {}):
            resp = await cli.request(method, path, json=body, headers=auth)
            assert resp.status == 401, (method, path, auth)
            assert "[crm_bridge] api_tokens" in (await resp.json())["message"]
    async with session_factory(engine)() as session:
        assert (await session.execute(select(Lead.id))).first() is None
        assert (await session.execute(select(Customer.id))).first() is None
