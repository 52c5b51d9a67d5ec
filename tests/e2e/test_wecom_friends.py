"""A new WeCom friend, delivered as WeCom delivers it (encrypted, up to three times), is matched to
the customer it already is, or becomes a customer and a lead of the rep who added it."""

from __future__ import annotations

from sqlalchemy import func, select

from store.models import Customer, Identity, InboxItem, Lead
from tests.conftest import AUTH
from tests.e2e.conftest import deliver, start_leadbot

REPS = [{"id": "r1", "name": "张三", "wecom_userid": "zhangsan", "team": "华东", "role": "rep"},
        {"id": "r2", "name": "李四", "wecom_userid": "lisi", "team": "华东", "role": "rep"}]


async def _count(engine, model, *where) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(model).where(*where))).scalar_one()


async def test_known_customer_is_recognised_and_its_owner_told(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom)
    lead = await (await cli.post("/api/v1/leads", json={"name": "王小明", "phone": "13812345678", "company": "华为"},
                                 headers=AUTH)).json()
    await deliver(cli)
    owner = await store.get_rep((await store.get_lead(lead["id"])).owner_id)
    other = "lisi" if owner.wecom_userid == "zhangsan" else "zhangsan"
    # The customer adds the *other* rep on WeChat; that rep wrote the phone into the remark.
    wecom.seed_contact("wmXM001", name="小明🌟", follow_users=[{"userid": other, "remark": "王小明",
                                                                "remark_mobiles": ["138 1234 5678"]}])
    first = await wecom.send_friend_added(other, "wmXM001", state="expo2026")
    for _ in range(2):  # WeCom re-sends unanswered events: no second effect
        await wecom.resend(first)
    await deliver(cli)
    assert await _count(engine, InboxItem, InboxItem.kind.contains("change_external_contact")) == 1
    customer_id = (await store.get_lead(lead["id"])).customer_id
    assert await _count(engine, Identity, Identity.kind == "external_userid", Identity.value == "wmXM001",
                        Identity.customer_id == customer_id) == 1
    assert await _count(engine, Customer) == 1 and await _count(engine, Lead) == 1
    cards = [m for m in wecom.messages_for(other) if "王小明" in str(m)]
    assert len(cards) == 1 and owner.name in str(cards[0])  # the card says who owns the customer
    # Why it is the same customer, whole in the card's language (masked), never half English.
    assert "手机号相同 138****5678" in str(cards[0]) and "same mobile" not in str(cards[0])
    assert any("添加了你的客户" in str(m) for m in wecom.messages_for(owner.wecom_userid))


async def test_unknown_friend_becomes_a_customer_and_a_lead(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom)
    wecom.seed_contact("wmNEW01", name="Lily", type=2, corp_name="腾讯",
                       follow_users=[{"userid": "lisi", "remark": "林莉", "remark_mobiles": ["13900002222"]}])
    await wecom.send_friend_added("lisi", "wmNEW01", state="douyin_ad_7")
    await deliver(cli)
    lisi = await store.rep_by_external_id("r2")
    leads = await store.list_leads(owner_id=lisi.id)
    assert len(leads) == 1
    lead = leads[0]
    assert lead.source_channel == "douyin_ad_7" and lead.status == "claimed" and lead.first_contact_at
    assert lead.name == "林莉" and lead.company == "腾讯"
    customer = await store.get_customer(lead.customer_id)
    assert ("external_userid", "wmNEW01") in customer.identities
    assert customer.owner_id == lisi.id
