"""DingTalk CRM customer events (ding_paas_object_data_*), delivered as DingTalk delivers them
(encrypted, ids only): the record is read back from the CRM API and matched like a new WeCom
friend."""

from __future__ import annotations

from sqlalchemy import select

from bot.context import CTX
from bot.platforms.dingtalk.crm import candidate_reps, record_from_oapi, record_from_v1
from store.models import AuditEntry, Customer, Identity, Lead
from tests.conftest import AUTH
from tests.friends.conftest import DT_REPS, count, run, seen_by, start_dingtalk_leadbot


async def _lead_and_owner(cli, store, **fields):
    lead = await (await cli.post("/api/v1/leads", json=fields, headers=AUTH)).json()
    await run(cli)
    lead = await store.get_lead(lead["id"])
    return lead, await store.get_rep(lead.owner_id)


async def test_known_customer_by_phone_is_linked_and_the_creator_told(aiohttp_client, engine, clock, store,
                                                                      dingtalk) -> None:
    await store.import_reps(DT_REPS)
    cli = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk)
    lead, owner = await _lead_and_owner(cli, store, name="王小明", phone="13812345678", company="华为")
    other = "dt_li" if owner.dingtalk_userid == "dt_chen" else "dt_chen"
    before = len(seen_by(dingtalk, owner.dingtalk_userid))
    # The other rep types the same person into DingTalk's CRM, phone written differently.
    data_id = dingtalk.seed_crm_customer(name="王小明", phone="+86 138-1234-5678", company="华为技术",
                                         creator=other)
    res = await dingtalk.send_crm_event("create", "crm_customer_personal", data_id, event_id="evt-c1")
    assert res.status == 200 and res.reply == "success"
    await run(cli)
    assert len(dingtalk.calls_to("/v1.0/crm/personalCustomers/batchQuery")) == 1
    assert await count(engine, Customer) == 1 and await count(engine, Lead) == 1
    assert await count(engine, Identity, Identity.kind == "dingtalk_id", Identity.value == f"crm:{data_id}",
                       Identity.customer_id == lead.customer_id) == 1
    cards = [c for c in seen_by(dingtalk, other) if "王小明" in c]
    assert len(cards) == 1 and owner.name in cards[0]  # the card says who owns the customer
    told = seen_by(dingtalk, owner.dingtalk_userid)[before:]
    assert any("王小明" in m for m in told)


async def test_unknown_customer_becomes_a_customer_and_a_claimed_lead_of_the_creator(
        aiohttp_client, engine, clock, store, dingtalk) -> None:
    await store.import_reps(DT_REPS)
    cli = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk)
    data_id = dingtalk.seed_crm_customer(name="林莉", phone="13900002222", company="腾讯", creator="dt_li",
                                         email="Lily@Example.com")
    await dingtalk.send_crm_event("create", "crm_customer_personal", data_id)
    await run(cli)
    li = await store.rep_by_external_id("r2")
    (lead,) = await store.list_leads(owner_id=li.id)
    assert lead.source_channel == "dingtalk_crm" and lead.status == "claimed" and lead.first_contact_at
    assert lead.name == "林莉" and lead.company == "腾讯"
    assert lead.extra["dingtalk_crm_id"] == data_id
    customer = await store.get_customer(lead.customer_id)
    assert customer.owner_id == li.id
    kinds = {k for k, _ in customer.identities}
    assert {"dingtalk_id", "phone", "email"} <= kinds
    assert not any("林莉" in m for m in seen_by(dingtalk, "dt_chen"))


async def test_the_owner_wins_over_the_creator(aiohttp_client, engine, clock, store, dingtalk) -> None:
    await store.import_reps(DT_REPS)
    cli = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk)
    data_id = dingtalk.seed_crm_customer(object_type="crm_customer", company="杭州云栖科技有限公司",
                                         phone="0571-88886666", creator="dt_chen", owners=["dt_li"])
    await dingtalk.send_crm_event("create", "crm_customer", data_id)
    await run(cli)
    li = await store.rep_by_external_id("r2")
    (lead,) = await store.list_leads(owner_id=li.id)
    assert lead.company == "杭州云栖科技有限公司"


async def test_a_crm_contact_is_read_through_the_old_api_and_matched_by_unionid(aiohttp_client, engine, clock,
                                                                               store, dingtalk) -> None:
    await store.import_reps(DT_REPS)
    cli = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk)
    first = dingtalk.seed_crm_customer(object_type="crm_contact", name="赵敏", phone="13700001111",
                                       creator="dt_chen", unionid="union-zm-1")
    await dingtalk.send_crm_event("create", "crm_contact", first)
    await run(cli)
    # The same person entered again by the other rep, without a phone: the unionid decides.
    second = dingtalk.seed_crm_customer(object_type="crm_contact", name="Zhao Min", creator="dt_li",
                                        unionid="union-zm-1")
    await dingtalk.send_crm_event("create", "crm_contact", second)
    await run(cli)
    assert len(dingtalk.calls_to("/topapi/crm/objectdata/contact/list")) == 2
    assert await count(engine, Customer) == 1 and await count(engine, Lead) == 1
    assert await count(engine, Identity, Identity.kind == "dingtalk_id") == 2
    assert any("赵敏" in m for m in seen_by(dingtalk, "dt_li"))


async def test_delete_is_audited_and_nothing_is_deleted(aiohttp_client, engine, clock, store, dingtalk) -> None:
    await store.import_reps(DT_REPS)
    cli = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk)
    data_id = dingtalk.seed_crm_customer(name="孙倩", phone="13600003333", creator="dt_chen")
    await dingtalk.send_crm_event("create", "crm_customer_personal", data_id)
    await run(cli)
    customer_id = (await store.list_leads())[0].customer_id
    dingtalk.delete_crm_record(data_id)
    calls = len(dingtalk.calls)
    await dingtalk.send_crm_event("delete", "crm_customer_personal", data_id)
    await run(cli)
    assert await count(engine, Customer, Customer.status == "active") == 1
    assert await count(engine, Lead) == 1
    assert await count(engine, Identity, Identity.value == f"crm:{data_id}") == 1
    async with engine.connect() as conn:
        rows = (await conn.execute(select(AuditEntry).where(
            AuditEntry.action == "crm.object_deleted_upstream"))).all()
    assert len(rows) == 1
    assert rows[0].subject_type == "customer" and rows[0].subject_id == str(customer_id)
    assert rows[0].data["kept"] is True and rows[0].data["data_id"] == data_id
    assert all(c.path != "/v1.0/crm/personalCustomers/batchQuery" for c in dingtalk.calls[calls:])


async def test_event_delivered_twice_and_updates_have_one_effect(aiohttp_client, engine, clock, store,
                                                                 dingtalk) -> None:
    await store.import_reps(DT_REPS)
    cli = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk)
    lead, owner = await _lead_and_owner(cli, store, name="周杰", phone="13511112222")
    other = "dt_li" if owner.dingtalk_userid == "dt_chen" else "dt_chen"
    data_id = dingtalk.seed_crm_customer(name="周杰", phone="13511112222", creator=other)
    for _ in range(2):  # DingTalk re-sends an event it thinks went unanswered
        await dingtalk.send_crm_event("create", "crm_customer_personal", data_id, event_id="evt-twice")
    await run(cli)
    await dingtalk.send_crm_event("create", "crm_customer_personal", data_id, event_id="evt-twice")
    # The rep edits the record: an update (new event id) re-reads it; a new phone is linked quietly.
    dingtalk.seed_crm_customer(data_id, name="周杰", phone="13511112222",
                               data={"customer_mobile": "13633334444"}, creator=other)
    await dingtalk.send_crm_event("update", "crm_customer_personal", data_id, event_id="evt-u1")
    await run(cli)
    assert len(dingtalk.calls_to("/v1.0/crm/personalCustomers/batchQuery")) == 2
    assert await count(engine, Customer) == 1 and await count(engine, Lead) == 1
    assert len([c for c in seen_by(dingtalk, other) if "周杰" in c]) == 1
    customer = await store.get_customer(lead.customer_id)
    assert ("phone", "+8613633334444") in customer.identities


async def test_unknown_rep_and_other_objects_are_ignored(aiohttp_client, engine, clock, store, dingtalk) -> None:
    await store.import_reps(DT_REPS)
    cli = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk)
    data_id = dingtalk.seed_crm_customer(name="钱多多", phone="13400005555", creator="someone_else")
    await dingtalk.send_crm_event("create", "crm_customer_personal", data_id)
    await dingtalk.send_crm_event("create", "crm_follow_record", "fr-1")
    await dingtalk.send_crm_event("create", "crm_customer_personal", "no-such-record")
    await run(cli)
    assert await count(engine, Customer) == 0
    assert (await cli.app[CTX].inbox.counts()) == {"done": 3}  # handled, not failed or retried


def test_records_parse_both_api_shapes() -> None:
    v1 = record_from_v1({
        "instanceId": "ec6e", "objectType": "crm_customer_personal", "creatorUserId": "u1",
        "permission": {"ownerStaffIds": ["u2"], "participantStaffIds": ["u3"]},
        "data": {"customer_name": "张三", "customer_phone": {"value": "13812345678", "extendValue": "{}"},
                 "customer_company_name": "华为", "DDSelectField-K1": {"value": "[\"潜在客户\"]"}},
        "extendData": {}})
    assert (v1.name, v1.company, v1.phones, v1.owner_userids) == ("张三", "华为", ("13812345678",), ("u2",))
    assert candidate_reps(v1) == ("u2", "u1")
    oapi = record_from_oapi({
        "instance_id": "inst_Id1", "object_type": "crm_contact", "creator_userid": "user1",
        "data": "{\"contact_name\":\"联系人1\",\"contact_phone\":{\"extendValue\":\"{}\",\"value\":\"136********\"}}",
        "extend_data": "{\"contactUserId\":\"userId02\",\"contactUnionId\":\"unionId02\"}",
        "permission": {"owner_userid_list": ["user01"], "participant_userid_list": []}})
    assert (oapi.name, oapi.phones, oapi.unionid, oapi.owner_userids) == ("联系人1", (), "unionId02", ("user01",))
