"""The manager reassigns from the escalation card; a rep snoozes a reminder within the limit."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import AUTH
from tests.e2e.conftest import card_keys, ctx_of, deliver, start_leadbot, template_cards

REPS = [
    {"id": "m1", "name": "周经理", "wecom_userid": "zhou", "team": "华东", "role": "manager"},
    {"id": "r1", "name": "张三", "wecom_userid": "zhangsan", "team": "华东", "role": "rep", "manager": "m1"},
    {"id": "r2", "name": "李四", "wecom_userid": "lisi", "team": "华东", "role": "rep", "manager": "m1"},
]
SLA = {"first_touch_remind": "2m", "first_touch_escalate": "4m", "first_touch_reassign": "30m",
       "pool_return": "2h", "snooze_max": "15m"}


async def _tick(cli, clock, minutes: float) -> None:
    clock.advance(timedelta(minutes=minutes))
    await ctx_of(cli).services.scheduler.sweep_once()
    await deliver(cli)


async def test_manager_reassigns_from_the_escalation(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, sla=SLA)
    lead = await (await cli.post("/api/v1/leads", json={"name": "高飞"}, headers=AUTH)).json()
    await deliver(cli)
    first = (await store.get_lead(lead["id"])).owner_id
    await _tick(cli, clock, 4.1)
    escalation = [c for c in template_cards(wecom, "zhou") if "reassign" in card_keys(c)][-1]
    # A rep cannot use the manager's button (token bound to the manager).
    owner = await store.get_rep(first)
    await wecom.send_card_event(owner.wecom_userid, card_keys(escalation)["reassign"], escalation["task_id"])
    assert (await store.get_lead(lead["id"])).owner_id == first
    before = len(wecom.messages_for("zhou"))
    await wecom.send_card_event("zhou", card_keys(escalation)["reassign"], escalation["task_id"])
    moved = await store.get_lead(lead["id"])
    assert moved.owner_id not in (None, first)
    await deliver(cli)
    new_owner = await store.get_rep(moved.owner_id)
    # The manager's card says where the lead went; no second message says it again.
    assert f"已改派给 {new_owner.name}" in str(escalation) and "reassign" not in card_keys(escalation)
    # Its fields name the owner now, and the one it escalated from as the former owner.
    rows = {r["keyname"]: r.get("value") for r in escalation["card"].get("horizontal_content_list", [])}
    assert rows.get("负责人") == new_owner.name and rows.get("原负责人") == owner.name, rows
    assert [m["msgtype"] for m in wecom.messages_for("zhou")[before:]] == []
    assert any("claim" in card_keys(c) for c in template_cards(wecom, new_owner.wecom_userid))


async def test_snooze_pushes_the_ladder_back_within_the_limit(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, sla=SLA)
    lead = await (await cli.post("/api/v1/leads", json={"name": "罗琳"}, headers=AUTH)).json()
    await deliver(cli)
    owner = await store.get_rep((await store.get_lead(lead["id"])).owner_id)
    await _tick(cli, clock, 2.1)
    reminder = [c for c in template_cards(wecom, owner.wecom_userid) if "snooze" in card_keys(c)][-1]
    await wecom.send_card_event(owner.wecom_userid, card_keys(reminder)["snooze"], reminder["task_id"])
    await _tick(cli, clock, 2.0)  # the escalation would have come now
    assert not [c for c in template_cards(wecom, "zhou")]
    await _tick(cli, clock, 15)  # snooze_max caps the delay (the button asked for 30 minutes)
    assert [c for c in template_cards(wecom, "zhou")]


async def test_an_escalation_claimed_meanwhile_stays_with_its_rep(aiohttp_client, engine, clock, store, wecom) -> None:
    """The manager's 改派 is about the lead as it escalated: once its owner has claimed it, an
    older escalation card (a WeCom client showing it still) moves nothing and says why."""
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, sla=SLA)
    lead = await (await cli.post("/api/v1/leads", json={"name": "高飞"}, headers=AUTH)).json()
    await deliver(cli)
    owner = await store.get_rep((await store.get_lead(lead["id"])).owner_id)
    await _tick(cli, clock, 4.1)
    escalation = [c for c in template_cards(wecom, "zhou") if "reassign" in card_keys(c)][-1]
    stale_key, stale_task = card_keys(escalation)["reassign"], escalation["task_id"]  # as the client still shows it
    offer = [c for c in template_cards(wecom, owner.wecom_userid) if "claim" in card_keys(c)][-1]
    await wecom.send_card_event(owner.wecom_userid, card_keys(offer)["claim"], offer["task_id"])
    claimed = await store.get_lead(lead["id"])
    assert (claimed.owner_id, claimed.claimed_at is not None) == (owner.id, True)
    await deliver(cli)
    before = len(wecom.messages_for("zhou"))
    assert "reassign" not in card_keys(escalation)  # the claim redrew the manager's copy
    await wecom.send_card_event("zhou", stale_key, stale_task)
    await deliver(cli)
    after = await store.get_lead(lead["id"])
    assert (after.owner_id, after.claimed_at, after.version) == (owner.id, claimed.claimed_at, claimed.version)
    told = wecom.messages_for("zhou")[before:]
    assert any(owner.name in str(m) and "认领" in str(m) for m in told), told
    # Nobody else was offered the lead.
    other = next(r for r in ("zhangsan", "lisi") if r != owner.wecom_userid)
    assert not [c for c in template_cards(wecom, other) if "claim" in card_keys(c)]


async def test_a_reassigned_lead_never_goes_back_to_the_rep_who_passed_it(
        aiohttp_client, engine, clock, store, wecom) -> None:
    """A rep passes the lead (放弃), the next one lets it escalate, the manager reassigns: the
    lead goes to someone who has not refused it, though the passer was once its customer's owner."""
    await store.import_reps(REPS + [{"id": "r3", "name": "王五", "wecom_userid": "wangwu", "team": "华东",
                                     "role": "rep", "manager": "m1"}])
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, sla=SLA)
    lead = await (await cli.post("/api/v1/leads", json={"name": "罗琳", "phone": "13911112222", "company": "罗氏贸易"},
                                 headers=AUTH)).json()
    await deliver(cli)
    passer = await store.get_rep((await store.get_lead(lead["id"])).owner_id)
    offer = [c for c in template_cards(wecom, passer.wecom_userid) if "pass" in card_keys(c)][-1]
    await wecom.send_card_event(passer.wecom_userid, card_keys(offer)["pass"], offer["task_id"])
    await deliver(cli)
    second = (await store.get_lead(lead["id"])).owner_id
    assert second not in (None, passer.id)
    await _tick(cli, clock, 4.1)
    escalation = [c for c in template_cards(wecom, "zhou") if "reassign" in card_keys(c)][-1]
    await wecom.send_card_event("zhou", card_keys(escalation)["reassign"], escalation["task_id"])
    moved = await store.get_lead(lead["id"])
    assert moved.owner_id not in (passer.id, second), (passer.id, second, moved.owner_id)
