"""'可能与 X 重复 — 合并?': the rep merges from the card, then undoes it; or keeps them apart."""

from __future__ import annotations

from tests.conftest import AUTH
from tests.e2e.conftest import card_keys, deliver, start_leadbot

REPS = [{"id": "r1", "name": "张三", "wecom_userid": "zhangsan", "team": "华东", "role": "rep"}]
CUSTOMERS = [{"id": "c1", "name": "王小明", "company": "华为技术有限公司", "email": "xm.wang@huawei.com",
              "city": "深圳"}]


async def _duplicate_card(wecom, user: str) -> dict:
    cards = [m for m in wecom.messages_for(user) if m["msgtype"] == "template_card"
             and "merge" in card_keys(m)]
    assert cards, [m.get("card", {}).get("main_title") for m in wecom.messages_for(user)]
    return cards[-1]


async def test_merge_then_undo_from_cards(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(REPS)
    await store.import_customers(CUSTOMERS)
    existing = 1
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom)
    lead = await (await cli.post("/api/v1/leads", json={"name": "王小明", "company": "华为", "phone": "13811112222",
                                                        "city": "深圳"}, headers=AUTH)).json()
    assert lead["customer_id"] != existing
    await deliver(cli)
    card = await _duplicate_card(wecom, "zhangsan")
    assert "王小明" in str(card["card"]["main_title"])
    # The reason, whole and in Chinese: same name, and the company its mail domain names.
    assert "姓名相同" in str(card) and "same name" not in str(card)
    offer = [m for m in wecom.messages_for("zhangsan") if "claim" in card_keys(m)][0]
    assert "疑似重复" in str(offer["card"])  # the lead card itself shows the suspicion
    await wecom.send_card_event("zhangsan", card_keys(card)["merge"], card["task_id"])
    merged = await store.get_customer(lead["customer_id"])
    assert merged.status == "merged" and merged.merged_into == existing
    assert (await store.get_lead(lead["id"])).customer_id == existing
    survivor = await store.get_customer(existing)
    assert ("phone", "+8613811112222") in survivor.identities
    await deliver(cli)
    undo_card = [m for m in wecom.messages_for("zhangsan") if "undo" in card_keys(m)][-1]
    await wecom.send_card_event("zhangsan", card_keys(undo_card)["undo"], undo_card["task_id"])
    restored = await store.get_customer(lead["customer_id"])
    assert restored.status == "active" and restored.merged_into is None
    assert (await store.get_lead(lead["id"])).customer_id == lead["customer_id"]
    assert ("phone", "+8613811112222") not in (await store.get_customer(existing)).identities


async def test_different_people_are_remembered(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(REPS)
    await store.import_customers(CUSTOMERS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom)
    lead = await (await cli.post("/api/v1/leads", json={"name": "王小明", "company": "华为", "city": "深圳"},
                                 headers=AUTH)).json()
    await deliver(cli)
    card = await _duplicate_card(wecom, "zhangsan")
    await wecom.send_card_event("zhangsan", card_keys(card)["distinct"], card["task_id"])
    from identity.service import find_duplicates

    again = await find_duplicates(store, lead["customer_id"])
    assert 1 not in [c for c, _, _ in again.candidates]
