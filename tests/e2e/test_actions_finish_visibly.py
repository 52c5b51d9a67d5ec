"""Every tap ends with something the rep can see: a confirmation on the tapped card, its spent
buttons gone, a repeat answered "already done" (never an error retried in a storm); the claimed
WeCom card offers 推进阶段; a gate refusal says where the evidence goes; no self-merge is offered."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from store.db import session_factory
from store.models import InboxItem
from tests.conftest import AUTH
from sandbox.demo import wecom_card_json
from tests.e2e.conftest import card_keys as keys_of_sent, ctx_of, deliver, start_leadbot

REPS = [
    {"id": "m1", "name": "周经理", "wecom_userid": "zhou", "team": "华东", "role": "manager"},
    {"id": "r1", "name": "张三", "wecom_userid": "zhangsan", "team": "华东", "role": "rep", "manager": "m1"},
]
CUSTOMERS = [{"id": "c1", "name": "王小明", "company": "华为技术有限公司", "email": "xm.wang@huawei.com",
              "city": "深圳"}]
SLA = {"first_touch_remind": "2m", "first_touch_escalate": "4m", "first_touch_reassign": "30m",
       "pool_return": "2h", "snooze_max": "15m"}
STAGES = {"stages": [{"name": "线索验证"}, {"name": "需求确认", "gates": ["budget"]}]}


def card_keys(message: dict) -> dict[str, str]:
    """Button keys of a card as the phone shows it now: a passive reply stores WeCom's XML shape."""
    return keys_of_sent({"card": wecom_card_json(message.get("card") or {})})


def _cards(wecom, user: str) -> list[dict]:
    return [m for m in wecom.messages_for(user) if m["msgtype"] == "template_card"]


def _texts(wecom, user: str) -> list[str]:
    return [m["content"]["content"] for m in wecom.messages_for(user) if m["msgtype"] == "text"]


async def _inbox_errors(engine) -> list[tuple[int, str]]:
    async with session_factory(engine)() as s:
        return [(r.attempts, r.error) for r in (await s.execute(select(InboxItem))).scalars() if r.error]


async def _tap(wecom, clock, user: str, card: dict, action: str):
    clock.advance(timedelta(seconds=1))  # a tap of its own, not a platform resend
    return await wecom.send_card_event(user, card_keys(card)[action], card["task_id"])


async def test_merge_and_undo_confirm_retire_and_answer_repeats(aiohttp_client, engine, clock, store,
                                                                wecom) -> None:
    await store.import_reps(REPS[1:])
    await store.import_customers(CUSTOMERS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom)
    lead = await (await cli.post("/api/v1/leads", json={"name": "王小明", "company": "华为", "phone": "13811112222",
                                                        "city": "深圳"}, headers=AUTH)).json()
    await deliver(cli)
    suggestion = next(c for c in _cards(wecom, "zhangsan") if "merge" in card_keys(c))
    merge_key = card_keys(suggestion)["merge"]

    await _tap(wecom, clock, "zhangsan", suggestion, "merge")
    assert card_keys(suggestion) == {}  # the suggestion's buttons are retired ...
    assert "已合并到 王小明" in str(suggestion["card"])  # ... and it says what happened
    assert (await store.get_customer(lead["customer_id"])).status == "merged"

    # A second tap on the old 合并 (a double tap, a stale copy): "already done", no error.
    clock.advance(timedelta(seconds=1))
    again = await wecom.send_card_event("zhangsan", merge_key, suggestion["task_id"])
    assert again.status == 200 and "该操作已处理过" in str(suggestion["card"])
    await deliver(cli)
    assert await _inbox_errors(engine) == []

    undo = [c for c in _cards(wecom, "zhangsan") if "undo" in card_keys(c)][-1]
    undo_key = card_keys(undo)["undo"]
    await _tap(wecom, clock, "zhangsan", undo, "undo")
    assert card_keys(undo) == {} and "已撤销合并" in str(undo["card"])
    assert (await store.get_customer(lead["customer_id"])).status == "active"
    clock.advance(timedelta(seconds=1))
    await wecom.send_card_event("zhangsan", undo_key, undo["task_id"])
    assert "该操作已处理过" in str(undo["card"])
    await deliver(cli)
    assert await _inbox_errors(engine) == []

    # The survivor inherited the merged record's suggestion (naming itself): a new lead of that
    # customer is never offered a merge into itself.
    await store.import_customers([{"id": "c2", "name": "李雷", "phone": "13900007777"}])
    again_lead = await (await cli.post("/api/v1/leads", json={"name": "王小明", "company": "华为技术有限公司",
                                                              "email": "xm.wang@huawei.com"},
                                       headers=AUTH)).json()
    await deliver(cli)
    for card in _cards(wecom, "zhangsan"):
        if "merge" in card_keys(card):
            text = str(card["card"])
            assert not (f"#{again_lead['customer_id']}" in text and "合并" in text)
    customer = await store.get_customer(again_lead["customer_id"])
    from bot.journey.identity import suggested_duplicate

    best = suggested_duplicate(customer)
    assert best is None or int(best["customer_id"]) != customer.id


async def test_snooze_and_pass_confirm_on_the_card(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(REPS + [{"id": "r2", "name": "李四", "wecom_userid": "lisi", "team": "华东",
                                     "role": "rep", "manager": "m1"}])
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, sla=SLA)
    lead = await (await cli.post("/api/v1/leads", json={"name": "罗琳"}, headers=AUTH)).json()
    await deliver(cli)
    user = (await store.get_rep((await store.get_lead(lead["id"])).owner_id)).wecom_userid
    clock.advance(timedelta(minutes=2.1))
    await ctx_of(cli).services.scheduler.sweep_once()
    await deliver(cli)
    reminder = [c for c in _cards(wecom, user) if "snooze" in card_keys(c)][-1]
    await _tap(wecom, clock, user, reminder, "snooze")
    assert "15 分钟后再提醒你" in str(reminder["card"]), reminder["card"]
    assert set(card_keys(reminder)) == {"claim"}  # 稍后提醒 spent, 认领 still there

    offer = next(c for c in _cards(wecom, user) if "pass" in card_keys(c))
    await _tap(wecom, clock, user, offer, "pass")
    assert card_keys(offer) == {} and "已放弃" in str(offer["card"])
    await deliver(cli)
    assert await _inbox_errors(engine) == []


async def test_wecom_claimed_card_advances_and_a_gate_says_where(aiohttp_client, engine, clock, store,
                                                                  wecom) -> None:
    await store.import_reps(REPS[1:])
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, pipeline=STAGES)
    lead = await (await cli.post("/api/v1/leads", json={"name": "高飞"}, headers=AUTH)).json()
    await deliver(cli)
    card = next(c for c in _cards(wecom, "zhangsan") if "claim" in card_keys(c))
    await _tap(wecom, clock, "zhangsan", card, "claim")
    assert wecom_card_json(card["card"])["card_type"] == "button_interaction"
    assert set(card_keys(card)) == {"advance"}  # 推进阶段, as on DingTalk
    await _tap(wecom, clock, "zhangsan", card, "advance")
    assert (await store.get_lead(lead["id"])).stage == "线索验证"
    await _tap(wecom, clock, "zhangsan", card, "advance")  # the next stage needs a budget
    await deliver(cli)
    refusal = _cards(wecom, "zhangsan")[-1]["card"]
    assert "预算" in str(refusal) or "budget" in str(refusal)
    jump = refusal["jump_list"][0]  # 去补充: the H5 page with the evidence form
    assert jump["title"] == "去补充" and refusal["card_action"]["url"] == jump["url"]
    link = jump["url"]
    page = await cli.get(link[len("http://leadbot.test"):])
    assert page.status == 200 and 'name="evidence.budget"' in await page.text()


async def test_the_sideline_notice_has_a_button_that_reinstates(aiohttp_client, engine, clock, store,
                                                                 wecom) -> None:
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, sla=SLA, assignment={"miss_streak_limit": 1})
    lead = await (await cli.post("/api/v1/leads", json={"name": "慢慢"}, headers=AUTH)).json()
    await deliver(cli)
    clock.advance(timedelta(minutes=4.1))  # nobody touched it: escalated, and 张三 is sidelined
    await ctx_of(cli).services.scheduler.sweep_once()
    await deliver(cli)
    assert (await store.get_rep((await store.get_lead(lead["id"])).owner_id)).sidelined
    notice = next(c for c in _cards(wecom, "zhou") if "reinstate" in card_keys(c))
    assert "恢复派单" in str(notice["card"])
    await _tap(wecom, clock, "zhou", notice, "reinstate")
    rep = next(r for r in await store.list_reps() if r.external_id == "r1")
    assert not rep.sidelined
    assert card_keys(notice) == {} and "张三 已恢复派单" in str(notice["card"])
