"""The first-touch ladder on WeCom with the injected clock: remind, escalate (manager and the
managers' group), reassign, then back to the pool; a claim stops it."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import AUTH
from tests.e2e.conftest import ctx_of, deliver, start_leadbot

# Card-only reps (WeCom app users): the default "auto" adds a text copy to each WeCom card (W3).
REPS = [
    {"id": "m1", "name": "周经理", "wecom_userid": "zhou", "team": "华东", "role": "manager", "delivery": "card"},
    {"id": "r1", "name": "张三", "wecom_userid": "zhangsan", "team": "华东", "role": "rep", "manager": "m1",
     "delivery": "card"},
    {"id": "r2", "name": "李四", "wecom_userid": "lisi", "team": "华东", "role": "rep", "manager": "m1",
     "delivery": "card"},
]
SLA = {"first_touch_remind": "2m", "first_touch_escalate": "4m", "first_touch_reassign": "30m",
       "pool_return": "2h"}


async def _tick(cli, clock, minutes: float) -> None:
    clock.advance(timedelta(minutes=minutes))
    await ctx_of(cli).services.scheduler.sweep_once()
    await deliver(cli)


def _texts(wecom, user: str) -> list[str]:
    return [str(m.get("card") or m.get("content")) for m in wecom.messages_for(user)]


async def test_the_ladder_climbs_and_a_claim_stops_it(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(REPS)
    wecom.robots = {"managers-robot"}
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, sla=SLA,
                              wecom={"manager_robot_key": "managers-robot"})
    lead = await (await cli.post("/api/v1/leads", json={"name": "王小明", "phone": "13812345678"},
                                 headers=AUTH)).json()
    await deliver(cli)
    owner = await store.get_rep((await store.get_lead(lead["id"])).owner_id)
    assert len(wecom.messages_for(owner.wecom_userid)) == 1

    await _tick(cli, clock, 1.9)
    assert len(wecom.messages_for(owner.wecom_userid)) == 1  # nothing before its time
    await _tick(cli, clock, 0.2)
    reminders = _texts(wecom, owner.wecom_userid)
    assert len(reminders) == 2 and "还在等你跟进" in reminders[-1]

    await _tick(cli, clock, 2.0)
    manager_msgs = _texts(wecom, "zhou")
    assert any("超时未跟进" in m for m in manager_msgs), manager_msgs
    assert wecom.robot_messages["managers-robot"], "the managers' group robot was not told"
    assert "13812345678" not in str(wecom.robot_messages["managers-robot"])  # masked in shared places

    # The owner claims late: the ladder stops, nothing more is sent.
    card = [m for m in wecom.messages_for(owner.wecom_userid) if m["msgtype"] == "template_card"][0]
    claim = [b["key"] for b in card["card"]["button_list"] if b["key"].startswith("claim:")][0]
    await wecom.send_card_event(owner.wecom_userid, claim, card["task_id"])
    before = {u: len(wecom.messages_for(u)) for u in ("zhangsan", "lisi", "zhou")}
    await _tick(cli, clock, 60)
    await _tick(cli, clock, 180)
    after = {u: len(wecom.messages_for(u)) for u in ("zhangsan", "lisi", "zhou")}
    assert after == before
    assert (await store.get_lead(lead["id"])).owner_id == owner.id


async def test_untouched_lead_is_reassigned_then_pooled(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, sla=SLA)
    lead = await (await cli.post("/api/v1/leads", json={"name": "李雷"}, headers=AUTH)).json()
    await deliver(cli)
    first = (await store.get_lead(lead["id"])).owner_id
    await _tick(cli, clock, 31)
    moved = await store.get_lead(lead["id"])
    assert moved.owner_id not in (None, first)
    new_owner = await store.get_rep(moved.owner_id)
    assert any(m["msgtype"] == "template_card" for m in wecom.messages_for(new_owner.wecom_userid))
    await _tick(cli, clock, 120)
    pooled = await store.get_lead(lead["id"])
    assert pooled.status == "pool" and pooled.owner_id is None
