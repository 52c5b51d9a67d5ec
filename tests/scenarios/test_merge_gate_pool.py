"""More of the lead's journey on both platforms, through leadbot's HTTP routes against the strict
simulated platforms, asserting after every step what every phone shows and that the outbox holds
no dead row:

- a stage gate refuses an advance: the refusal links to the lead's H5 page, the evidence goes in
  there, the advance succeeds, and the claimer's card follows;
- a possible duplicate merged from its card and the merge undone, by a WeCom and a DingTalk rep;
- the SLA ladder runs out: the lead goes back to the pool, every rep is offered it, and the CRM
  receives the change event (its mirror never shows a pooled lead as still assigned).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.conftest import AUTH
from tests.scenarios.conftest import CRM_AUTH, Phones

REP_USERS = ("wangfang", "liqiang", "chenjing", "qianwei")
ALL_USERS = (*REP_USERS, "zhou")
PLATFORM_OF = {"wangfang": "wecom", "liqiang": "wecom", "chenjing": "dingtalk", "qianwei": "dingtalk"}
REP_ID_OF = {"wangfang": "w1", "liqiang": "w2", "chenjing": "d1", "qianwei": "d2"}


async def _no_dead(phones: Phones) -> None:
    counts = await phones.ctx.services.outbox.counts()
    assert counts.get("dead", 0) == 0, await phones.ctx.services.outbox.list(("dead",))
    assert not any("投递告警" in t for u in ALL_USERS for t in phones.texts(u))


def _nobody_else(phones: Phones, lead_id: int, *users: str) -> None:
    """The lead is on no phone but these users'."""
    for user in ALL_USERS:
        if user not in users:
            assert phones.cards(user, lead_id) == [], (user, phones.cards(user, lead_id))


async def _crm_lead(phones: Phones, external_id: str, owner: str, name: str) -> int:
    phone = "137" + "".join(c for c in external_id if c.isdigit()).rjust(8, "0")
    resp = await phones.cli.put(f"/api/v1/leads/{external_id}", json={"name": name, "phone": phone,
                                                                       "owner": owner}, headers=CRM_AUTH)
    assert resp.status == 201, await resp.text()
    await phones.settle()
    return int((await resp.json())["lead"]["id"])


async def _h5(phones: Phones, link: str, **form: str) -> str:
    path = link[link.index("/a/"):]
    resp = await (phones.cli.post(path, data=form) if form else phones.cli.get(path))
    assert resp.status == 200, resp.status
    return await resp.text()


@pytest.mark.parametrize("user", ["wangfang", "chenjing"])
async def test_a_gate_refusal_links_to_the_page_where_the_evidence_goes(phones: Phones, store, user: str) -> None:
    lead_id = await _crm_lead(phones, f"CRM-5{len(user)}", REP_ID_OF[user], "邹静")
    (offer,) = phones.cards(user, lead_id)
    await phones.tap(user, offer["ref"], offer["keys"]["claim"])
    await phones.settle()
    (mine,) = phones.cards(user, lead_id)
    await phones.tap(user, mine["ref"], mine["keys"]["advance"])  # 线索验证: no gate
    await phones.settle()
    (mine,) = phones.cards(user, lead_id)
    assert "线索验证" in mine["text"] and mine["actions"] == ["advance"], mine
    _nobody_else(phones, lead_id, user)
    await _no_dead(phones)

    # 痛点诊断 needs a needs document: refused, and the refusal links to where it goes.
    await phones.tap(user, mine["ref"], mine["keys"]["advance"])
    await phones.settle()
    assert (await store.get_lead(lead_id)).stage == "线索验证"
    refusals = [c for c in phones.cards(user, None) if "痛点诊断" in c["title"] + c["text"] and c["links"]]
    assert len(refusals) == 1, phones.cards(user, None)
    (refusal,) = refusals
    assert "去补充" in refusal["text"] and "需求文档" in refusal["text"], refusal
    (mine,) = phones.cards(user, lead_id)
    assert "你已认领" in mine["text"] and mine["actions"] == ["advance"], mine  # the card stays as it was
    await _no_dead(phones)

    # The page has the evidence form; the evidence goes in and the advance succeeds.
    page = await _h5(phones, refusal["links"][0])
    assert 'name="evidence.needs_document"' in page, page
    key = re.search(r'name="key" value="(advance:[^"]+)"', page).group(1)
    done = await _h5(phones, refusal["links"][0], key=key, **{"evidence.needs_document": "https://docs.example.com/n.pdf"})
    assert 'data-code="advanced"' in done, done
    await phones.settle()
    lead = await store.get_lead(lead_id)
    assert lead.stage == "痛点诊断"
    assert (await phones.ctx.services.lead_actions.evidence(lead_id))["needs_document"].endswith("n.pdf")
    # The claimer's card follows, on WeCom too (the stage is a field, but their 推进阶段 is bound
    # to the stage the card showed): still theirs, at 痛点诊断, its 推进 for the next stage.
    (now_mine,) = phones.cards(user, lead_id)
    assert "你已认领" in now_mine["text"] and "痛点诊断" in now_mine["text"], now_mine
    assert now_mine["actions"] == ["advance"] and now_mine["keys"]["advance"] != mine["keys"]["advance"]
    # ... and on DingTalk the refusal no longer asks for what is there: it says the lead moved
    # on. (WeCom answers a text_notice's send with no response_code: that copy cannot change.)
    (moved,) = [c for c in phones.cards(user, None) if c["ref"] == refusal["ref"]]
    if PLATFORM_OF[user] == "dingtalk":
        assert "已推进到 痛点诊断" in moved["text"] and "去补充" not in moved["text"], moved
    else:
        assert moved["text"] == refusal["text"]
    _nobody_else(phones, lead_id, user)
    await _no_dead(phones)


CUSTOMERS = [{"id": "c1", "name": "王小明", "company": "华为技术有限公司", "email": "xm.wang@huawei.com", "city": "深圳"},
             {"id": "c2", "name": "李娜", "company": "腾讯科技有限公司", "email": "na.li@tencent.com", "city": "深圳"},
             {"id": "c3", "name": "张伟", "company": "阿里巴巴集团", "email": "wei.zhang@alibaba.com", "city": "杭州"}]
LEADS = [{"name": "王小明", "company": "华为", "phone": "13811112222", "city": "深圳"},
         {"name": "李娜", "company": "腾讯", "phone": "13811113333", "city": "深圳"},
         {"name": "张伟", "company": "阿里巴巴", "phone": "13811114444", "city": "杭州"}]


def _tap_later(phones: Phones) -> None:
    # A tap of its own, not the platform resending one (DingTalk's taps within 5 s are one).
    phones.clock.advance(timedelta(seconds=6))


async def test_merge_and_undo_on_both_platforms(phones: Phones, store) -> None:
    await store.import_customers(CUSTOMERS)
    by_platform: dict[str, tuple[int, str]] = {}
    for body in LEADS:  # routed round robin: three leads reach both platforms
        lead = await (await phones.cli.post("/api/v1/leads", json=body, headers=AUTH)).json()
        await phones.settle()
        owner = await store.get_rep((await store.get_lead(lead["id"])).owner_id)
        user = owner.wecom_userid or owner.dingtalk_userid
        by_platform.setdefault(PLATFORM_OF[user], (lead["id"], user))
    assert set(by_platform) == {"wecom", "dingtalk"}, by_platform
    await _no_dead(phones)

    for platform, (lead_id, user) in by_platform.items():
        lead = await store.get_lead(lead_id)
        incoming = lead.customer_id
        (offer,) = [c for c in phones.cards(user, lead_id) if c["actions"] == ["claim", "pass"]]
        (suggestion,) = [c for c in phones.cards(user, None) if "merge" in c["actions"]
                         and lead.name in c["text"]]
        assert suggestion["actions"] == ["merge", "distinct"], suggestion
        _nobody_else(phones, lead_id, user)

        # 合并: the suggestion says what happened, its buttons retired; 撤销 comes with it.
        _tap_later(phones)
        await phones.tap(user, suggestion["ref"], suggestion["keys"]["merge"])
        await phones.settle()
        assert (await store.get_customer(incoming)).status == "merged", platform
        (merged,) = [c for c in phones.cards(user, None) if c["ref"] == suggestion["ref"]]
        assert merged["actions"] == [] and "已合并到" in merged["text"], merged
        undos = [c for c in phones.cards(user, None) if "undo" in c["actions"]]
        assert len(undos) == 1 and "已合并到" in undos[0]["text"], phones.cards(user, None)
        (now_offer,) = [c for c in phones.cards(user, lead_id) if c["ref"] == offer["ref"]]
        assert now_offer["actions"] == ["claim", "pass"]  # the lead is still theirs to claim
        # The offer no longer asks "possible duplicate — merge?" (on WeCom too: a badge is part
        # of what a copy's one code is kept for).
        assert "疑似重复" in offer["text"] and "疑似重复" not in now_offer["text"], now_offer
        _nobody_else(phones, lead_id, user)
        await _no_dead(phones)

        # 合并 again (a double tap, a stale copy): "already done", nothing changes, no error.
        _tap_later(phones)
        again = await phones.tap(user, suggestion["ref"], suggestion["keys"]["merge"])
        await phones.settle()
        assert again.status == 200
        (merged,) = [c for c in phones.cards(user, None) if c["ref"] == suggestion["ref"]]
        assert merged["actions"] == [] and "该操作已处理过" in merged["text"], merged
        await _no_dead(phones)

        # 撤销: the merge is undone, said on the card, its button retired; a repeat changes nothing.
        (undo,) = undos
        _tap_later(phones)
        await phones.tap(user, undo["ref"], undo["keys"]["undo"])
        await phones.settle()
        assert (await store.get_customer(incoming)).status == "active", platform
        (undone,) = [c for c in phones.cards(user, None) if c["ref"] == undo["ref"]]
        assert undone["actions"] == [] and "已撤销合并" in undone["text"], undone
        _tap_later(phones)
        await phones.tap(user, undo["ref"], undo["keys"]["undo"])
        await phones.settle()
        (undone,) = [c for c in phones.cards(user, None) if c["ref"] == undo["ref"]]
        assert undone["actions"] == [] and "该操作已处理过" in undone["text"], undone
        assert (await store.get_customer(incoming)).status == "active"
        (merged,) = [c for c in phones.cards(user, None) if c["ref"] == suggestion["ref"]]
        assert merged["actions"] == [], merged
        (now_offer,) = [c for c in phones.cards(user, lead_id) if c["ref"] == offer["ref"]]
        assert now_offer["actions"] == ["claim", "pass"]
        _nobody_else(phones, lead_id, user)
        await _no_dead(phones)


async def test_a_merge_that_leaves_another_possible_duplicate_asks_about_that_one(phones: Phones, store) -> None:
    """One person entered three times (a customer record and two leads): merging the second
    lead's customer into the record leaves the first lead's customer looking the same. The lead
    card still says 疑似重复, so the rep is asked about that pair too, with its own buttons, and
    merging it leaves nothing to ask."""
    await store.import_customers([{"id": "c1", "name": "王小明", "company": "华为技术有限公司", "city": "上海"}])
    ids = []
    for _ in range(2):
        lead = await (await phones.cli.post("/api/v1/leads", json={"name": "王小明", "company": "华为技术"},
                                            headers=AUTH)).json()
        await phones.settle()
        ids.append(lead["id"])
    lead_id = ids[1]
    owner = await store.get_rep((await store.get_lead(lead_id)).owner_id)
    user = owner.wecom_userid or owner.dingtalk_userid
    (first,) = [c for c in phones.cards(user, None) if "merge" in c["actions"]]
    _tap_later(phones)
    await phones.tap(user, first["ref"], first["keys"]["merge"])
    await phones.settle()
    asks = [c for c in phones.cards(user, None) if "merge" in c["actions"]]
    assert len(asks) == 1 and asks[0]["ref"] != first["ref"], phones.cards(user, None)
    _tap_later(phones)
    await phones.tap(user, asks[0]["ref"], asks[0]["keys"]["merge"])
    await phones.settle()
    assert not [c for c in phones.cards(user, None) if "merge" in c["actions"]]
    (offer,) = [c for c in phones.cards(user, lead_id) if "claim" in c["actions"]]
    if PLATFORM_OF[user] == "dingtalk":  # WeCom: the offer's one code went on the first merge
        assert "疑似重复" not in offer["text"], offer
    await _no_dead(phones)
