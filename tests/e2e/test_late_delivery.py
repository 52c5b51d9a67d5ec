"""A card that waited to be sent (a catch-up after a long gap, a held or throttled row) shows the
lead as it is when it arrives, not as it was when the step fired."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import AUTH
from tests.e2e.conftest import card_keys, ctx_of, deliver, start_leadbot, template_cards

REPS = [
    {"id": "m1", "name": "周经理", "wecom_userid": "zhou", "team": "华东", "role": "manager"},
    {"id": "r1", "name": "张三", "wecom_userid": "zhangsan", "team": "华东", "role": "rep", "manager": "m1"},
]
SLA = {"first_touch_remind": "2m", "first_touch_escalate": "30m", "first_touch_reassign": "60m",
       "pool_return": "2h"}


async def test_a_reminder_sent_after_the_claim_arrives_claimed(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, sla=SLA)
    lead = await (await cli.post("/api/v1/leads", json={"name": "高飞"}, headers=AUTH)).json()
    await deliver(cli)
    offer = [c for c in template_cards(wecom, "zhangsan") if "claim" in card_keys(c)][-1]
    # The reminder step fires, but its row is not sent yet (the worker is behind).
    clock.advance(timedelta(minutes=2.1))
    await ctx_of(cli).services.scheduler.sweep_once()
    # Meanwhile the rep claims from the first card.
    await wecom.send_card_event("zhangsan", card_keys(offer)["claim"], offer["task_id"])
    assert (await store.get_lead(lead["id"])).claimed_at is not None
    clock.advance(timedelta(minutes=1))
    await deliver(cli)
    await deliver(cli)
    reminders = [c for c in template_cards(wecom, "zhangsan") if c["task_id"] != offer["task_id"]]
    assert reminders, "the reminder row was sent"
    # What the rep sees on it now: no live 认领 on a lead they already hold.
    assert all("claim" not in card_keys(c) for c in reminders), reminders
