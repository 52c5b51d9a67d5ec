"""The async identity API on the database: auto-match of new friends, linking, lead intake,
customer import de-duplication; the SQL candidate source agrees with the in-memory index."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from store import dto
from identity.matcher import NEW, POSSIBLE, SAME
from identity.service import (ContactInfo, IdentityConflict, IdentityService, backfill_normalized,
                                         build_index,
                                         create_customer_from_contact, find_duplicates, link_contact,
                                         link_identity, match_contact)
from store.models import AuditEntry, Customer, Identity

ROWS = [
    {"id": "C1", "name": "王小明", "phone": "138 1234 5678", "email": "wxm@huawei.com", "company": "华为技术有限公司",
     "city": "深圳"},
    {"id": "C2", "name": "张伟", "phone": "13911112222", "company": "腾讯科技（深圳）有限公司", "city": "深圳"},
    {"id": "C3", "name": "张伟", "phone": "13733334444", "company": "阿里巴巴（中国）有限公司", "city": "杭州"},
    {"id": "C4", "name": "李娜", "phone": "021-61234567", "company": "上海某某贸易有限公司",
     "wechat_unionid": "oUnionLiNa"},
]


async def _seed(store) -> dict[str, int]:
    summary = await store.import_customers(ROWS)
    assert summary.created == len(ROWS) and not summary.rejected
    async with store.sessions() as session:
        return {c.external_id: c.id for c in (await session.execute(select(Customer))).scalars()}


async def test_new_friend_matched_by_remark_mobile_with_a_pinyin_name(store) -> None:
    ids = await _seed(store)
    contact = ContactInfo(external_userid="wmFriend1", name="Xiaoming Wang 🌟", remark_mobiles=("+86 138-1234-5678",))
    result = await match_contact(store, contact)
    assert (result.kind, result.customer_id) == (SAME, ids["C1"])
    assert "mobile" in result.reason


async def test_new_friend_matched_by_unionid(store) -> None:
    ids = await _seed(store)
    result = await match_contact(store, ContactInfo(external_userid="wmX", unionid="oUnionLiNa", name="娜娜"))
    assert (result.kind, result.customer_id) == (SAME, ids["C4"])


async def test_new_friend_by_name_and_company_is_only_possible(store) -> None:
    ids = await _seed(store)
    contact = ContactInfo(external_userid="wmY", name="阳光", remark="张伟-腾讯", corp_name="深圳市腾讯计算机系统有限公司")
    result = await match_contact(store, contact)
    assert (result.kind, result.customer_id) == (POSSIBLE, ids["C2"])
    assert result.candidates[0][0] == ids["C2"]
    # A common name at another company is nobody we know.
    other = await match_contact(store, ContactInfo(external_userid="wmZ", name="张伟", corp_name="字节跳动"))
    assert other.kind == NEW and other.customer_id is None


async def test_link_identity_and_conflicts(store) -> None:
    ids = await _seed(store)
    linked = await link_identity(store, ids["C1"], "external_userid", "wmFriend1", "rep:u1")
    assert linked.linked and linked.customer_id == ids["C1"]
    again = await link_identity(store, ids["C1"], "external_userid", "wmFriend1", "rep:u1")
    assert again.already and not again.linked
    # A strong identifier another customer holds is not moved silently.
    conflict = await link_identity(store, ids["C2"], "phone", "13812345678", "rep:u1")
    assert not conflict.linked and conflict.conflict_customer_id == ids["C1"]
    with pytest.raises(ValueError):
        await link_identity(store, ids["C1"], "phone", "12345", "rep:u1")
    # The friend is now recognised by its external_userid alone.
    result = await match_contact(store, ContactInfo(external_userid="wmFriend1", name="随便"))
    assert (result.kind, result.customer_id) == (SAME, ids["C1"])
    async with store.sessions() as session:
        actions = (await session.execute(select(AuditEntry.action))).scalars().all()
    assert "identity.linked" in actions and "identity.link_conflict" in actions


async def test_create_customer_from_contact(store) -> None:
    contact = ContactInfo(external_userid="wmNew", unionid="oNew", name="🌸Lily", remark="陈静（微信备注：展会认识）",
                          corp_name="华为", remark_corp_name="华为技术有限公司", remark_mobiles=("13600001111", "021-55556666"))
    customer = await create_customer_from_contact(store, contact, actor="rep:u2", owner_id=None)
    assert customer.display_name == "陈静" and customer.company == "华为技术有限公司"
    assert set(customer.identities) == {("external_userid", "wmNew"), ("unionid", "oNew"),
                                        ("phone", "+8613600001111"), ("phone", "+862155556666")}
    assert customer.attributes["wecom_name"] == "🌸Lily"
    async with store.sessions() as session:
        strong = dict((await session.execute(select(Identity.value, Identity.strong))).all())
        row = await session.get(Customer, customer.id)
    assert strong["+862155556666"] is False and strong["+8613600001111"] is True
    assert row.normalized_name and row.normalized_company == "huawei"
    result = await match_contact(store, ContactInfo(external_userid="wmOther", remark_mobiles=("136 0000 1111",)))
    assert result.customer_id == customer.id
    with pytest.raises(IdentityConflict):
        await create_customer_from_contact(store, ContactInfo(unionid="oNew", name="x"), actor="rep:u2")


async def test_link_contact_links_every_identifier(store) -> None:
    ids = await _seed(store)
    results = await link_contact(store, ids["C2"], ContactInfo(external_userid="wmZW", unionid="oZW",
                                                               remark_mobiles=("13911112222",)), "rep:u1")
    assert [(r.kind, r.linked, r.already) for r in results] == [
        ("external_userid", True, False), ("unionid", True, False), ("phone", False, True)]


async def test_lead_intake_links_to_the_customer_a_mobile_names(store) -> None:
    ids = await _seed(store)
    lead, created = await store.create_lead(dto.LeadInput(fields={"name": "Wang Xiaoming", "phone": "+86 13812345678",
                                                                   "email": "xiaoming.wang@gmail.com"}))
    assert created and lead.customer_id == ids["C1"]
    customer = await store.get_customer(ids["C1"])
    assert ("email", "xiaoming.wang@gmail.com") in customer.identities  # the new identifier is kept
    # Only weak evidence: a new customer, with the suggestion kept for the lead card.
    lead2, _ = await store.create_lead(dto.LeadInput(fields={"name": "张伟", "company": "腾讯科技", "email": "zw@qq.com"}))
    assert lead2.customer_id not in ids.values()
    new_customer = await store.get_customer(lead2.customer_id)
    suggestions = new_customer.attributes["possible_duplicates"]
    assert suggestions[0]["customer_id"] == ids["C2"] and suggestions[0]["reason"]


async def test_import_merges_strong_duplicates_and_flags_suspected(store) -> None:
    await _seed(store)
    rows = [
        {"id": "D1", "name": "Wang Xiaoming", "phone": "+86 138-1234-5678", "title": "采购经理", "wechat": "wxm_88"},
        {"id": "D2", "name": "张伟", "company": "深圳市腾讯计算机系统有限公司"},
        {"id": "D3", "name": "赵敏", "phone": "13600002222"},
        {"id": "D4", "name": "赵敏", "phone": "136-0000-2222", "email": "zm@example.com"},
    ]
    summary = await store.import_customers(rows)
    assert summary.created == 2 and summary.updated == 2
    assert [m.line for m in summary.merged] == [2, 5]
    assert [s.line for s in summary.suspected] == [3]
    assert "C2" in summary.suspected[0].reason
    assert any("merged into it" in n for n in summary.notes)
    async with store.sessions() as session:
        c1 = (await session.execute(select(Customer).where(Customer.external_id == "C1"))).scalar_one()
    # The merged row's data is kept: blanks filled, differing values aside.
    assert c1.title == "采购经理" and c1.attributes["wechat"] == "wxm_88"
    assert c1.display_name == "王小明"
    assert c1.attributes["merged_from"]["import line 2 (D1)"]["display_name"] == "Wang Xiaoming"
    # Re-importing the same file is idempotent: every row finds its customer again.
    again = await store.import_customers(rows)
    assert again.created == 0


async def test_sql_and_index_decisions_agree(store) -> None:
    ids = await _seed(store)
    index = await build_index(store)
    assert len(index) == len(ROWS)
    contacts = [ContactInfo(remark_mobiles=("13812345678",)), ContactInfo(name="张伟", corp_name="腾讯科技"),
                ContactInfo(name="张伟", corp_name="字节跳动"), ContactInfo(unionid="oUnionLiNa")]
    for contact in contacts:
        sql = await match_contact(store, contact)
        mem = await match_contact(store, contact, index=index)
        assert (sql.kind, sql.customer_id) == (mem.kind, mem.customer_id), contact
    assert (await find_duplicates(store, ids["C2"])).kind == NEW


async def test_identity_service_keeps_its_index_current(store) -> None:
    ids = await _seed(store)
    service = IdentityService(store)
    await service.load_index()
    customer = await service.create_customer_from_contact(ContactInfo(external_userid="wmS", name="钱多多",
                                                                      corp_name="华为技术有限公司"), actor="rep:u1")
    assert (await service.match_contact(ContactInfo(external_userid="wmS"))).customer_id == customer.id
    await service.link_identity(ids["C3"], "external_userid", "wmC3", "rep:u1")
    assert (await service.match_contact(ContactInfo(external_userid="wmC3"))).customer_id == ids["C3"]
    merge = await service.merge(ids["C1"], customer.id, "manager:m1")
    assert (await service.match_contact(ContactInfo(external_userid="wmS"))).customer_id == ids["C1"]
    await service.undo_merge(merge.merge_id, "manager:m1")
    assert (await service.match_contact(ContactInfo(external_userid="wmS"))).customer_id == customer.id


async def test_backfill_makes_older_rows_findable(store, clock) -> None:
    async with store.sessions() as session, session.begin():
        session.add(Customer(display_name="欧阳娜娜", company="华为技术有限公司", attributes={},
                             created_at=clock.now(), updated_at=clock.now()))
    assert (await match_contact(store, ContactInfo(name="Nana Ouyang", corp_name="华为"))).kind == NEW
    assert await backfill_normalized(store) == 2
    assert await backfill_normalized(store) == 0
    result = await match_contact(store, ContactInfo(name="Nana Ouyang", corp_name="华为"))
    assert result.kind != NEW and result.customer_id is not None


async def test_a_role_mailbox_in_an_import_never_merges_two_colleagues(store) -> None:
    rows = [{"id": "S1", "name": "周燕", "email": "sales@hengxin.com.cn", "company": "苏州恒信电子科技有限公司"},
            {"id": "S2", "name": "董雪", "email": "Sales@hengxin.com.cn", "company": "恒信电子科技"}]
    summary = await store.import_customers(rows)
    assert summary.created == 2 and not summary.merged
    async with store.sessions() as session:
        held = (await session.execute(select(Identity).where(Identity.kind == "email"))).scalars().all()
    # Both keep the company's mailbox, as a weak identity: it names the company, not a person.
    assert len(held) == 2 and not any(i.strong for i in held)
    result = await match_contact(store, ContactInfo(name="陈伟", email="sales@hengxin.com.cn"))
    assert result.kind == NEW


async def test_a_possible_duplicate_reason_reads_whole_in_each_language(store) -> None:
    await store.import_customers([{"id": "A1", "name": "张立新", "company": "ABC科技(上海)有限公司",
                                   "phone": "13812345678"}])
    result = await match_contact(store, ContactInfo(name="Zhang Lixin", email="l.zhang@abc.com"))
    assert result.kind != NEW
    assert "姓名相同（拼音）" in result.reason_in("zh") and "abc.com" in result.reason_in("zh")
    assert not any(word in result.reason_in("zh") for word in ("same", "name", "company"))
    assert "same name (pinyin)" in result.reason_in("en") and "同" not in result.reason_in("en")
