"""Off-hours routing: the on-duty rep (值班) at once, else the next working window."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from routing.duty import DutyStore

SH = ZoneInfo("Asia/Shanghai")


async def test_duty_rotation_takes_off_hours_leads_one_rep_per_period(seed, make_router, clock):
    team = await seed.team("华东")
    await seed.rep("白班", team)
    a = await seed.rep("张三", team, external_id="d-a")
    b = await seed.rep("李四", team, external_id="d-b")
    router = make_router([{"name": "east", "team": "华东"}], duty={"teams": {"华东": ["d-a", "d-b"]}})
    clock.set(datetime(2026, 11, 23, 20, 0, tzinfo=SH))  # Monday evening
    monday = await router.assign(await seed.lead())
    clock.set(datetime(2026, 11, 24, 7, 0, tzinfo=SH))  # still Monday's off-hours period
    early = await router.assign(await seed.lead())
    clock.set(datetime(2026, 11, 24, 20, 0, tzinfo=SH))  # Tuesday evening: the other rep's turn
    tuesday = await router.assign(await seed.lead())
    assert monday.outcome == early.outcome == tuesday.outcome == "on_duty"
    assert monday.rep_id == early.rep_id and {monday.rep_id, tuesday.rep_id} == {a, b}
    # A whole weekend is one period: Friday's.
    clock.set(datetime(2026, 11, 27, 19, 0, tzinfo=SH))
    friday = await router.assign(await seed.lead())
    clock.set(datetime(2026, 11, 29, 15, 0, tzinfo=SH))
    sunday = await router.assign(await seed.lead())
    assert friday.rep_id == sunday.rep_id
    # The one on duty is on leave: the next in the rotation covers.
    await seed.update_rep(sunday.rep_id, status="on_leave")
    cover = await router.assign(await seed.lead())
    assert cover.outcome == "on_duty" and cover.rep_id == ({a, b} - {sunday.rep_id}).pop()
    # In working hours the duty rotation plays no part.
    clock.set(datetime(2026, 11, 30, 10, 0, tzinfo=SH))
    assert (await router.assign(await seed.lead())).outcome == "assigned"


async def test_a_manager_override_wins_and_only_urgent_rules_reach_the_duty_rep(seed, make_router, clock, engine):
    team = await seed.team("华东")
    await seed.rep("白班", team)
    await seed.rep("张三", team, external_id="d-a")
    wang = await seed.rep("王五", team, external_id="d-w")
    rules = [{"name": "big", "team": "华东", "urgent": True, "match": {"amount": {"min": 100000}}},
             {"name": "east", "team": "华东"}]
    router = make_router(rules, duty={"teams": {"华东": ["d-a"]}, "only_urgent": True})
    await DutyStore(engine, clock).set("华东", ["d-w"], "manager:1")
    clock.set(datetime(2026, 11, 28, 23, 0, tzinfo=SH))  # Saturday night
    big = await router.assign(await seed.lead(amount=500000))
    small = await router.assign(await seed.lead(amount=5000))
    assert big.outcome == "on_duty" and big.rep_id == wang
    assert small.outcome == "deferred" and small.until == datetime(2026, 11, 30, 9, 0, tzinfo=SH)
    assert small.expected == "白班"
    await DutyStore(engine, clock).clear("华东")
    again = await router.assign(await seed.lead(amount=200000))
    assert again.rep_id != wang and again.outcome == "on_duty"


async def test_explain_says_what_happens_and_when_in_the_calendars_zone(seed, make_router, clock, engine):
    from routing.explain_text import explain_lead

    team = await seed.team("华东")
    await seed.rep("白班", team)
    await seed.rep("张三", team, external_id="d-a")
    clock.set(datetime(2026, 11, 28, 22, 30, tzinfo=SH))  # Saturday night
    waiting = await make_router([{"name": "east", "team": "华东"}]).assign(await seed.lead())
    text = await explain_lead(engine, waiting.lead_id, "zh")
    assert "11月28日 周六 22:30（非工作时间）到达" in text
    assert "团队「华东」没有值班人员，周一 09:00 分配给当时在班的 白班（按当前轮转预计）" in text
    assert "公海" not in text and "群" not in text
    duty = make_router([{"name": "east", "team": "华东"}], duty={"teams": {"华东": ["d-a"]}})
    sent = await duty.assign(await seed.lead())
    assert "已发给值班 张三" in await explain_lead(duty, sent.lead_id, "zh")
    assert "went to 张三, on duty" in await explain_lead(duty, sent.lead_id, "en")
    # History lines are in the calendar's zone too, not UTC.
    clock.set(datetime(2026, 11, 30, 9, 0, tzinfo=SH))
    await duty.assign(waiting.lead_id, trigger="window")
    later = await explain_lead(engine, waiting.lead_id, "zh")
    assert "2026-11-28 22:30 Asia/Shanghai 等待工作时间" in later and "UTC" not in later
