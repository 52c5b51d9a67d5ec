"""Router against the database (SQLite here, PostgreSQL in CI through the `engine` fixture)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from store.db import session_factory
from store.models import Customer, RoutingDecision, RoutingState
from routing.explain_text import explain_lead
from routing import Router
from leadbot.settings import ConfigError
from leadbot.time_text import date_text
from tests.conftest import make_settings


async def second_engine(engine):
    """On PostgreSQL, an engine with its own pool: to the database, a second leadbot process."""
    if engine.dialect.name != "postgresql":
        return engine  # SQLite is the embedded single-process default
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async with engine.connect() as conn:
        path = (await conn.execute(text("SHOW search_path"))).scalar_one()
    return create_async_engine(engine.url.render_as_string(hide_password=False),
                               connect_args={"server_settings": {"search_path": path}}, pool_size=5)


async def decisions(engine, lead_id=None):
    async with session_factory(engine)() as s:
        q = select(RoutingDecision).order_by(RoutingDecision.id)
        if lead_id is not None:
            q = q.where(RoutingDecision.lead_id == lead_id)
        return list((await s.execute(q)).scalars())


async def test_fairness_over_1000_leads_within_two_percent(seed, make_router):
    team = await seed.team("华东")
    ids = [await seed.rep(n, team, weight=w) for n, w in (("甲", 1), ("乙", 2), ("丙", 3))]
    router = make_router([{"name": "east", "team": "华东"}])
    leads = await seed.leads(1000, region="上海")
    got = Counter()
    for lead_id in leads:
        d = await router.assign(lead_id)
        assert d.applied and d.outcome == "assigned"
        got[d.rep_id] += 1
    for rep_id, weight in zip(ids, (1, 2, 3)):
        assert abs(got[rep_id] / 1000 - weight / 6) <= 0.02, got
    # Smooth WRR is exact, not just within tolerance.
    assert [got[i] for i in ids] in ([167, 333, 500], [166, 334, 500], [166, 333, 501], [167, 334, 499])


async def test_pointer_survives_restart(engine, seed, make_router):
    team = await seed.team("T")
    ids = [await seed.rep(n, team, weight=w) for n, w in (("a", 1), ("b", 2), ("c", 3))]
    picks = []
    for lead_id in await seed.leads(12):
        router = make_router([{"name": "r", "team": "T"}])  # a fresh process every time
        picks.append((await router.assign(lead_id)).rep_id)
    assert Counter(picks) == {ids[0]: 2, ids[1]: 4, ids[2]: 6}
    assert picks[:6] == [ids[2], ids[1], ids[2], ids[0], ids[1], ids[2]]
    async with session_factory(engine)() as s:
        state = (await s.execute(select(RoutingState))).scalar_one()
    assert state.key == f"wrr:r:{team}" and state.version == 12


async def test_on_leave_left_capped_and_daily_cap_skipped_with_reasons(engine, seed, make_router):
    team = await seed.team("T")
    leave = await seed.rep("休假", team, status="on_leave")
    gone = await seed.rep("离职", team, status="left")
    full = await seed.rep("满员", team, capacity=1)
    daily = await seed.rep("日限", team, daily_cap=1)
    free = await seed.rep("空闲", team)
    await seed.leads(1, owner_id=full, status="assigned")  # full is at capacity
    router = make_router([{"name": "r", "team": "T", "strategy": "capped"}])
    first = await router.assign(await seed.lead())
    second = await router.assign(await seed.lead())
    third = await router.assign(await seed.lead())
    assert {first.rep_id, second.rep_id} == {daily, free}
    assert third.rep_id == free  # daily used its cap of 1 today
    skips = {c.rep_id: c.skip for c in third.candidates}
    assert skips == {leave: "on_leave", gone: "left", full: "over_capacity", daily: "daily_cap", free: None}
    row = (await decisions(engine, third.lead_id))[0]
    assert {c["rep_id"]: c.get("skip") for c in row.candidates} == skips
    assert row.rule == "r" and row.rule_version == router.rules.rules[0].version and row.outcome == "assigned"
    # Caps reset at local midnight: the next working day 'daily' is eligible again.
    seed.clock.advance(timedelta(days=1))
    d = await router.assign(await seed.lead())
    assert {c.rep_id: c.skip for c in d.candidates}[daily] is None


async def test_outside_hours_weekend_holiday_and_rep_hours(seed, make_router, clock):
    team = await seed.team("T")
    day = await seed.rep("白班", team)
    night = await seed.rep("夜班", team, working_hours="18:00-23:00")
    router = make_router([{"name": "r", "team": "T"}], calendar={"holidays": ["2026-11-24"]})
    d = await router.assign(await seed.lead())  # Monday 10:00
    assert d.rep_id == day and {c.rep_id: c.skip for c in d.candidates}[night] == "outside_hours"
    clock.set(datetime(2026, 11, 23, 12, 30, tzinfo=timezone.utc))  # Monday 20:30 Shanghai
    d = await router.assign(await seed.lead())
    assert d.rep_id == night and {c.rep_id: c.skip for c in d.candidates}[day] == "outside_hours"
    clock.set(datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc))  # Tuesday 10:00, a holiday
    d = await router.assign(await seed.lead())
    # Nobody on duty: no pool grab, the lead waits for Wednesday 09:00 and the day shift.
    assert d.outcome == "deferred" and all(c.skip == "outside_hours" for c in d.candidates)
    assert d.until == datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc) and d.expected == "白班"
    assert (await seed.get_lead(d.lead_id)).status == "waiting"
    clock.set(datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc))  # Saturday 10:00
    d = await router.assign(await seed.lead())
    assert d.outcome == "deferred" and d.until == datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc)
    assert (await router.assign(d.lead_id)).applied is False  # waits for its window, not a resubmission


async def test_active_within_minutes(seed, make_router, clock):
    team = await seed.team("T")
    idle = await seed.rep("idle", team, last_active_at=clock.now() - timedelta(hours=2))
    never = await seed.rep("never", team)
    busy = await seed.rep("busy", team, last_active_at=clock.now() - timedelta(minutes=5))
    router = make_router([{"name": "r", "team": "T"}], active_within_minutes=30)
    d = await router.assign(await seed.lead())
    assert d.rep_id == busy
    assert {c.rep_id: c.skip for c in d.candidates} == {idle: "inactive", never: "inactive", busy: None}


async def test_fallback_backup_then_manager_then_pool(seed, make_router):
    team = await seed.team("华南")
    mgr = await seed.rep("经理", team, role="manager")
    await seed.set_team_manager(team, mgr)
    await seed.rep("请假", team, status="on_leave")
    backup = await seed.rep("后备", None, external_id="bk-1")
    router = make_router([{"name": "south", "team": "华南", "backup": "bk-1"}])

    d = await router.assign(await seed.lead())
    assert (d.outcome, d.rep_id) == ("backup", backup)
    await seed.update_rep(backup, status="on_leave")
    d = await router.assign(await seed.lead())
    assert (d.outcome, d.rep_id, d.team_id) == ("manager", mgr, team)
    await seed.update_rep(mgr, status="on_leave")
    lead_id = await seed.lead()
    d = await router.assign(lead_id)
    assert d.pool and d.rep_id is None and d.team_id == team
    assert [(c.role, c.skip) for c in d.candidates] == [("member", "on_leave"), ("backup", "on_leave"),
                                                       ("manager", "on_leave")]
    lead = await seed.get_lead(lead_id)
    assert (lead.status, lead.owner_id, lead.team_id) == ("pool", None, team)
    # assign() again leaves a pool lead alone (its card is out); from_pool retries routing.
    again = await router.assign(lead_id)
    assert not again.applied and again.pool and again.decision_id == d.decision_id
    await seed.update_rep(mgr, status="active")
    d = await router.assign(lead_id, from_pool=True)
    assert d.applied and d.outcome == "manager"


async def test_pool_rule_and_missing_team(seed, make_router):
    team = await seed.team("Intl")
    await seed.rep("x", team)
    router = make_router([{"name": "en", "match": {"language": "en"}, "pool": "Intl"},
                          {"name": "ghost", "match": {"region": "火星"}, "team": "不存在"}])
    d = await router.assign(await seed.lead(language="en"))
    assert d.pool and d.team_id == team and d.candidates == ()
    d = await router.assign(await seed.lead(region="火星"))
    assert d.pool and d.team_id is None
    text = await explain_lead(router.engine, d.lead_id, "en")
    assert "does not exist" in text


async def test_rules_route_on_extra_and_amount(seed, make_router):
    ka = await seed.team("KA")
    smb = await seed.team("SMB")
    big = await seed.rep("大客户经理", ka)
    small = await seed.rep("中小客户", smb)
    router = make_router([
        {"name": "ka", "team": "KA", "match": {"amount": {"min": 100000}, "extra.industry": ["制造", "汽车"]}},
        {"name": "smb", "team": "SMB"},
    ])
    d = await router.assign(await seed.lead(amount=150000.0, extra={"industry": "汽车"}))
    assert (d.rule, d.rep_id, d.team_id) == ("ka", big, ka)
    d = await router.assign(await seed.lead(amount=150000.0, extra={"industry": "零售"}))
    assert (d.rule, d.rep_id) == ("smb", small)
    d = await router.assign(await seed.lead(amount=99999.0, extra={"industry": "制造"}))
    assert (d.rule, d.rep_id) == ("smb", small)


async def test_sticky_owner_first_and_customer_follows_assignment(engine, seed, make_router, clock):
    team = await seed.team("T")
    owner = await seed.rep("老负责人", team)
    other = await seed.rep("新人", team, weight=100)
    customer = await seed.customer(owner_id=owner)
    router = make_router([{"name": "r", "team": "T"}])
    clock.set(datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc))  # Saturday: stickiness ignores hours
    d = await router.assign(await seed.lead(customer_id=customer))
    assert (d.outcome, d.rep_id, d.strategy) == ("sticky", owner, "sticky")
    clock.set(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    await seed.update_rep(owner, status="on_leave")
    d = await router.assign(await seed.lead(customer_id=customer))
    assert (d.outcome, d.rep_id) == ("assigned", other)
    assert d.candidates[0].role == "owner" and d.candidates[0].skip == "on_leave"
    # A new customer becomes the assigned rep's, so its next lead is sticky.
    fresh = await seed.customer()
    d = await router.assign(await seed.lead(customer_id=fresh))
    async with session_factory(engine)() as s:
        assert (await s.get(Customer, fresh)).owner_id == d.rep_id
    d2 = await router.assign(await seed.lead(customer_id=fresh))
    assert d2.outcome == "sticky" and d2.rep_id == d.rep_id


async def test_merged_customer_follows_to_survivor_owner(seed, make_router):
    team = await seed.team("T")
    owner = await seed.rep("owner", team)
    await seed.rep("other", team, weight=10)
    survivor = await seed.customer(owner_id=owner)
    merged = await seed.customer(status="merged", merged_into=survivor)
    router = make_router()
    d = await router.assign(await seed.lead(customer_id=merged))
    assert (d.outcome, d.rep_id) == ("sticky", owner)


async def test_miss_streak_sidelines_after_three_and_recovers(seed, make_router):
    team = await seed.team("T")
    mgr = await seed.rep("经理", team, role="manager")
    await seed.set_team_manager(team, mgr)
    slow = await seed.rep("慢", team)
    fast = await seed.rep("快", team)
    router = make_router([{"name": "r", "team": "T"}])
    assert await router.record_first_touch(slow, on_time=False) is None
    assert await router.record_first_touch(slow, on_time=False) is None
    ev = await router.record_first_touch(slow, on_time=False)
    assert ev is not None and (ev.kind, ev.rep_id, ev.manager_id, ev.miss_streak) == ("sidelined", slow, mgr, 3)
    assert await router.record_first_touch(slow, on_time=False) is None  # already out: no second notice
    for _ in range(3):
        d = await router.assign(await seed.lead())
        assert d.rep_id == fast
        assert {c.rep_id: c.skip for c in d.candidates}[slow] == "sidelined"
    # Two on-time responses (miss_streak_recover default 2) bring them back.
    assert await router.record_first_touch(slow, on_time=True) is None
    ev = await router.record_first_touch(slow, on_time=True)
    assert ev is not None and ev.kind == "reinstated"
    rep = await seed.get_rep(slow)
    assert (rep.sidelined, rep.miss_streak, rep.ontime_streak) == (False, 0, 0)
    picks = {(await router.assign(await seed.lead())).rep_id for _ in range(2)}
    assert picks == {slow, fast}


async def test_on_time_resets_the_streak_and_manager_reinstates(seed, make_router):
    team = await seed.team("T")
    rep = await seed.rep("r", team, manager_id=None)
    router = make_router(miss_streak_limit=2)
    await router.record_first_touch(rep, on_time=False)
    await router.record_first_touch(rep, on_time=True)  # streak broken
    assert await router.record_first_touch(rep, on_time=False) is None
    ev = await router.record_first_touch(rep, on_time=False)
    assert ev.kind == "sidelined" and ev.manager_id is None
    ev = await router.reinstate(rep, actor="manager:zhou")
    assert ev.kind == "reinstated" and ev.actor == "manager:zhou"
    assert await router.reinstate(rep, actor="manager:zhou") is None
    assert not (await seed.get_rep(rep)).sidelined


async def test_next_candidate_excludes_current_owner(engine, seed, make_router):
    team = await seed.team("T")
    a = await seed.rep("a", team)
    b = await seed.rep("b", team)
    c = await seed.rep("c", team)
    router = make_router([{"name": "r", "team": "T"}])
    lead_id = await seed.lead()
    first = await router.assign(lead_id)
    second = await router.next_candidate(lead_id, reason="declined")
    assert second.applied and second.rep_id not in (first.rep_id,) and second.previous_owner_id == first.rep_id
    third = await router.next_candidate(lead_id, exclude=[first.rep_id], reason="sla_reassign")
    assert third.rep_id not in (first.rep_id, second.rep_id)
    assert {c_.rep_id: c_.skip for c_ in third.candidates}[first.rep_id] == "excluded"
    fourth = await router.next_candidate(lead_id, exclude=[a, b, c], reason="declined")
    assert fourth.pool
    lead = await seed.get_lead(lead_id)
    assert (lead.owner_id, lead.status) == (None, "pool")
    assert len(await decisions(engine, lead_id)) == 4
    text = await explain_lead(engine, lead_id, "zh")
    assert "公海" in text and "更早的分配记录" in text


async def test_reassign_escalated_moves_only_a_lead_still_waiting_on_its_owner(engine, seed, make_router):
    """A storm digest's reassignment, decided on the lead as it is now: claimed, moved or closed
    meanwhile, it is left alone (not applied, no decision row); still waiting, it moves on."""
    from crm.leads import LeadActions

    team = await seed.team("T")
    for name in ("a", "b", "c"):
        await seed.rep(name, team)
    router = make_router([{"name": "r", "team": "T"}])
    actions = LeadActions(engine, seed.clock)
    waiting, claimed, moved = [await seed.lead() for _ in range(3)]
    owners = {lead_id: (await router.assign(lead_id)).rep_id for lead_id in (waiting, claimed, moved)}
    assert (await actions.claim(claimed, owners[claimed], "rep")).outcome == "claimed"
    await router.next_candidate(moved, reason="declined")
    for lead_id in (claimed, moved):
        before = await seed.get_lead(lead_id)
        d = await router.reassign_escalated(lead_id, owners[lead_id])
        assert not d.applied
        after = await seed.get_lead(lead_id)
        assert (after.owner_id, after.version) == (before.owner_id, before.version)
    d = await router.reassign_escalated(waiting, owners[waiting])
    assert d.applied and d.rep_id not in (None, owners[waiting]) and d.previous_owner_id == owners[waiting]
    assert not (await router.reassign_escalated(waiting, owners[waiting])).applied  # a repeat: moved already


async def test_reroute_open_leads_when_a_rep_leaves(seed, make_router):
    team = await seed.team("T")
    leaving = await seed.rep("要走", team)
    stay1 = await seed.rep("留1", team)
    stay2 = await seed.rep("留2", team)
    router = make_router([{"name": "r", "team": "T"}])
    customers = [await seed.customer(owner_id=leaving) for _ in range(4)]
    open_ids = [await seed.lead(owner_id=leaving, status="assigned", customer_id=c) for c in customers]
    # Two more leads of the first customer: the customer moves once, and its leads follow it.
    same = [await seed.lead(owner_id=leaving, status="claimed", customer_id=customers[0]) for _ in range(2)]
    closed = await seed.lead(owner_id=leaving, status="won")
    await seed.update_rep(leaving, status="left")
    moved = await router.reroute_open_leads(leaving)
    assert [lead.id for lead, _ in moved] == open_ids + same
    assert all(lead.owner_id in (stay1, stay2) and lead.owner_id == d.rep_id for lead, d in moved)
    assert all(lead.status == "assigned" and lead.claimed_at is None for lead, _ in moved)
    by_lead = {lead.id: d for lead, d in moved}
    assert [by_lead[i].rep_id for i in open_ids].count(stay1) == 2  # round robin, not all to one
    assert [by_lead[i].outcome for i in same] == ["sticky", "sticky"]
    assert {by_lead[i].rep_id for i in same} == {by_lead[open_ids[0]].rep_id}
    assert all(d.previous_owner_id == leaving for _, d in moved)
    async with session_factory(router.engine)() as s:
        owners = [(await s.get(Customer, c)).owner_id for c in customers]
    assert owners == [by_lead[i].rep_id for i in open_ids]
    assert (await seed.get_lead(closed)).owner_id == leaving
    assert await router.reroute_open_leads(leaving) == []
    text = await explain_lead(router, open_ids[0], "en")
    assert "left the company" in text and "要走" in text


async def test_concurrent_assign_of_one_lead_gives_one_owner(engine, seed, make_router):
    team = await seed.team("T")
    for n in range(5):
        await seed.rep(f"r{n}", team)
    router = make_router([{"name": "r", "team": "T"}])
    engine2 = await second_engine(engine)
    other = Router(engine2, router.settings, make_settings().calendar, seed.clock)  # "another process"
    lead_id = await seed.lead()
    try:
        results = await asyncio.gather(*[(router if i % 2 else other).assign(lead_id) for i in range(20)])
    finally:
        if engine2 is not engine:
            await engine2.dispose()
    assert sum(r.applied for r in results) == 1
    assert len({r.rep_id for r in results}) == 1
    assert len(await decisions(engine, lead_id)) == 1
    assert (await seed.get_lead(lead_id)).owner_id == results[0].rep_id
    async with session_factory(engine)() as s:
        state = (await s.execute(select(RoutingState))).scalar_one()
    assert state.version == 1  # the pointer moved once, for the one decision that happened


async def test_concurrent_assign_of_many_leads_stays_fair(engine, seed, make_router):
    team = await seed.team("T")
    ids = [await seed.rep(n, team, weight=w) for n, w in (("a", 1), ("b", 2), ("c", 3))]
    routers = [make_router([{"name": "r", "team": "T"}]) for _ in range(2)]
    engine2 = await second_engine(engine)
    routers.append(Router(engine2, routers[0].settings, make_settings().calendar, seed.clock))
    leads = await seed.leads(60)
    try:
        results = await asyncio.gather(*[routers[i % 3].assign(lead_id) for i, lead_id in enumerate(leads)])
    finally:
        if engine2 is not engine:
            await engine2.dispose()
    assert all(r.applied for r in results)
    assert Counter(r.rep_id for r in results) == {ids[0]: 10, ids[1]: 20, ids[2]: 30}
    assert len(await decisions(engine)) == 60


async def test_explain_zh_and_en(seed, make_router):
    team = await seed.team("华东")
    await seed.rep("张三", team, weight=2)
    await seed.rep("李四", team, status="on_leave")
    await seed.rep("王五", team, working_hours="19:00-22:00")
    router = make_router([{"name": "east", "team": "华东", "match": {"region": ["上海", "江苏"]}}])
    d = await router.assign(await seed.lead(region="上海"))
    zh = await explain_lead(router, d.lead_id)
    assert "分配给 张三" in zh and "「east」" in zh and "加权轮询" in zh
    assert d.rule_version not in zh and f"该规则自 {date_text(router.calendar.local_date(d.at), 'zh')} 起为现行写法。" in zh
    assert "李四：跳过（休假中）" in zh and "王五：跳过（不在工作时间）" in zh and "选中" in zh
    assert "地区为上海、江苏之一" in zh
    en = await explain_lead(router.engine, d.lead_id, "en")
    assert "went to 张三" in en and "on leave" in en and "outside working hours" in en and "chosen" in en
    assert "weighted round robin" in en
    assert "There is no lead #999999" in await explain_lead(router.engine, 999999, "en")


async def test_assign_is_idempotent_and_respects_closed_leads(engine, seed, make_router):
    team = await seed.team("T")
    await seed.rep("a", team)
    router = make_router()
    lead_id = await seed.lead()
    d1 = await router.assign(lead_id)
    d2 = await router.assign(lead_id)
    assert d1.applied and not d2.applied and d2.rep_id == d1.rep_id and d2.decision_id == d1.decision_id
    won = await seed.lead(status="won")
    d = await router.assign(won)
    assert not d.applied and d.outcome == "not_assignable"
    manual = await seed.lead(owner_id=d1.rep_id, status="claimed")
    d = await router.assign(manual)
    assert not d.applied and d.outcome == "already_assigned" and d.rep_id == d1.rep_id
    with pytest.raises(LookupError):
        await router.assign(123456)
    async with session_factory(engine)() as s:
        assert (await s.execute(select(func.count()).select_from(RoutingDecision))).scalar_one() == 1


async def test_least_loaded_strategy_counts_open_leads(seed, make_router):
    team = await seed.team("T")
    busy = await seed.rep("busy", team)
    idle = await seed.rep("idle", team)
    await seed.leads(3, owner_id=busy, status="assigned")
    await seed.leads(5, owner_id=idle, status="lost")  # closed leads are no load
    router = make_router([{"name": "r", "team": "T", "strategy": "least_loaded"}])
    picks = [(await router.assign(await seed.lead())).rep_id for _ in range(4)]
    assert picks[:3] == [idle, idle, idle] and picks[3] == busy  # 3:3 tie -> lower id


def test_invalid_rules_fail_at_construction(engine, clock):
    s = make_settings(assignment={"rules": [{"name": "ok"}, {"name": "bad", "strategy": "random"}]})
    with pytest.raises(ConfigError, match=r"^config: \[assignment\] rules\[1\] \('bad'\): strategy"):
        Router(engine, s.assignment, s.calendar, clock)


async def test_holiday_range_accepted_by_config_is_the_routers_calendar_too(seed, make_router, clock):
    """One calendar: a range like 国庆's passes [calendar] validation and the router honours it."""
    team = await seed.team("T")
    await seed.rep("甲", team)
    router = make_router([{"name": "r", "team": "T"}], calendar={"holidays": ["2026-10-01..2026-10-08"]})
    clock.set(datetime(2026, 10, 5, 2, 0, tzinfo=timezone.utc))  # Monday 10:00, inside the range
    d = await router.assign(await seed.lead())
    assert all(c.skip == "outside_hours" for c in d.candidates if c.role == "member")
    clock.set(datetime(2026, 10, 9, 2, 0, tzinfo=timezone.utc))  # Friday 10:00, after it
    assert (await router.assign(await seed.lead())).outcome == "assigned"


async def test_explain_names_the_rule_and_the_day_it_took_its_form(seed, make_router):
    """Not a version hash: the rule as sales ops named it, and since when it reads as it does. The
    day is the first time leadbot ran with that form of the rule, shared by every Router."""
    from datetime import timedelta

    team = await seed.team("华东")
    await seed.rep("张三", team)
    rule = {"name": "华东大区", "team": "华东", "match": {"region": "上海"}}
    first = make_router([rule])
    d1 = await first.assign(await seed.lead(region="上海"))
    seed.clock.advance(timedelta(days=3))
    same = await make_router([rule]).assign(await seed.lead(region="上海"))  # a restart, the rule unchanged
    changed = await make_router([{**rule, "match": {"region": ["上海", "江苏"]}}]).assign(
        await seed.lead(region="上海"))
    day = {x.lead_id: date_text(first.calendar.local_date(x.at), "en") for x in (d1, changed)}
    assert f"rule “华东大区” using weighted round robin. The rule has read as it does since {day[d1.lead_id]}." \
        in await explain_lead(first, same.lead_id, "en")
    text = await explain_lead(first, changed.lead_id, "en")
    assert f"since {day[changed.lead_id]}." in text and day[d1.lead_id] != day[changed.lead_id]
    assert changed.rule_version not in text
