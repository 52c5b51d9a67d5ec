"""The calendar suite: one scenario played at frozen instants across a week, through the HTTP edge
against the simulated WeCom, with the injected clock. Whatever the hour, a rep's own actions are
answered at once and the lead reaches a named person at a stated time; what differs between
03:00 Sunday and 10:00 Tuesday is only what the calendar says (now, or when the window opens).

The scenario: a lead comes in over the intake API; 李四 asks the bot for help (a command); 李四
adds a WeChat friend who is 张三's existing customer (the match answers 李四's own action; the
notice to 张三 can wait)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from routing.explain_text import explain_lead
from leadbot.time_text import local_text
from leadbot.workcal import WorkCalendar
from tests.conftest import AUTH
from tests.e2e.conftest import ctx_of, deliver, start_leadbot

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
REPS = [
    # Card-only reps (WeCom app users): the default "auto" adds a text copy to each card (W3).
    {"id": "m1", "name": "周经理", "wecom_userid": "zhou", "team": "华东", "role": "manager", "delivery": "card"},
    {"id": "r1", "name": "张三", "wecom_userid": "zhangsan", "team": "华东", "role": "rep", "manager": "m1",
     "delivery": "card"},
    {"id": "r2", "name": "李四", "wecom_userid": "lisi", "team": "华东", "role": "rep", "manager": "m1",
     "delivery": "card"},
]
RULES = [{"name": "east", "team": "华东"}]
# 2026-12-02 (Wednesday) is a holiday; Saturday 2026-12-05 is worked to pay for it (调休).
CALENDAR = {"holidays": ["2026-12-02"], "extra_workdays": ["2026-12-05"]}
WEEK = {
    "tuesday 10:00": (datetime(2026, 12, 1, 10, 0, tzinfo=SH), CALENDAR),
    "weekday night": (datetime(2026, 12, 1, 22, 0, tzinfo=SH), CALENDAR),
    "sunday 03:00": (datetime(2026, 11, 29, 3, 0, tzinfo=SH), CALENDAR),
    "holiday": (datetime(2026, 12, 2, 10, 0, tzinfo=SH), CALENDAR),
    "调休 saturday": (datetime(2026, 12, 5, 10, 0, tzinfo=SH), CALENDAR),
    # A deployment whose calendar is Berlin's: 10:00 in Shanghai is 03:00 there.
    "berlin calendar": (datetime(2026, 12, 1, 10, 0, tzinfo=SH), {"timezone": "Europe/Berlin"}),
    # The head office in Shanghai, the 华东 team working from Berlin ([calendar.teams]).
    "a team in another zone": (datetime(2026, 12, 1, 10, 0, tzinfo=SH),
                               {**CALENDAR, "teams": {"华东": {"timezone": "Europe/Berlin"}}}),
    "that team in its own hours": (datetime(2026, 12, 1, 19, 0, tzinfo=SH),  # 12:00 in Berlin
                                   {**CALENDAR, "teams": {"华东": {"timezone": "Europe/Berlin"}}}),
}


def kinds(wecom, user: str, since: int = 0) -> list[str]:
    """What a person received, in words: lead card, friend match, owner notice, command reply."""
    out = []
    for m in wecom.messages_for(user)[since:]:
        text = str(m)
        if "李雷" in text:
            out.append("lead card")
        elif "添加了你的客户" in text:
            out.append("friend notice")
        elif "王小明" in text:
            out.append("friend match")
        elif "我的线索" in text:
            out.append("command reply")
        else:
            out.append("other: " + text[:80])
    return out


async def play(aiohttp_client, engine, clock, store, wecom, at: datetime, calendar: dict, **sections):
    clock.set(at)
    await store.import_reps(REPS)
    await store.import_customers([{"id": "c1", "name": "王小明", "phone": "13812345678", "owner": "r1"}])
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, calendar=calendar,
                              assignment={"rules": RULES}, **sections)
    lead = await (await cli.post("/api/v1/leads", json={"name": "李雷", "phone": "13900001111"},
                                 headers=AUTH)).json()
    await wecom.send_text("lisi", "帮助")
    wecom.seed_contact("wmXM001", name="小明", follow_users=[{"userid": "lisi", "remark": "王小明",
                                                               "remark_mobiles": ["13812345678"]}])
    await wecom.send_friend_added("lisi", "wmXM001")
    await deliver(cli)
    return cli, lead["id"]


async def open_window(cli, clock, when: datetime) -> None:
    clock.set(when)
    await ctx_of(cli).services.scheduler.catch_up()
    await deliver(cli)


@pytest.mark.parametrize("name", list(WEEK))
async def test_the_same_scenario_across_the_week(name, aiohttp_client, engine, clock, store, wecom) -> None:
    at, calendar = WEEK[name]
    cal = WorkCalendar.from_settings(ctx_settings(calendar).for_team("华东"))  # every rep here is in 华东
    window = cal.next_working_instant(at)
    working = window == at
    cli, lead_id = await play(aiohttp_client, engine, clock, store, wecom, at, calendar)

    # At once, whatever the hour: the answers to 李四's own actions.
    now = {u: kinds(wecom, u) for u in ("zhangsan", "lisi", "zhou")}
    assert "command reply" in now["lisi"] and "friend match" in now["lisi"], now
    assert now["zhou"] == []  # nobody escalates about a lead nobody was shown

    explain = await explain_lead(engine, lead_id, "zh", calendar=ctx_settings(calendar))
    lead = await store.get_lead(lead_id)
    if working:
        assert lead.status == "assigned" and lead.assigned_at == at
        owner = await store.get_rep(lead.owner_id)
        assert "lead card" in now[owner.wecom_userid] and "friend notice" in now["zhangsan"]
        assert f"分配给 {owner.name}" in explain
    else:
        # Off hours, nobody on duty: offered to nobody yet, and explain says when it will be.
        assert lead.status == "waiting" and lead.owner_id is None
        assert all("lead card" not in k for k in now.values()) and "friend notice" not in now["zhangsan"]
        assert f"{local_text(window, cal, 'zh', now=at)} 分配给" in explain and "公海" not in explain
        seen = {u: len(wecom.messages_for(u)) for u in now}
        await open_window(cli, clock, window - timedelta(seconds=1))
        assert {u: len(wecom.messages_for(u)) for u in now} == seen  # not a second early
        await open_window(cli, clock, window)
        lead = await store.get_lead(lead_id)
        assert lead.status == "assigned" and lead.assigned_at == window  # its SLA counts from here
        owner = await store.get_rep(lead.owner_id)
        later = {u: kinds(wecom, u, seen[u]) for u in now}
        assert "lead card" in later[owner.wecom_userid] and "friend notice" in later["zhangsan"]
        assert later["zhou"] == []
        card = [m for m in wecom.messages_for(owner.wecom_userid) if "李雷" in str(m)][-1]
        assert "到达" in str(card) and "起算" in str(card)  # when it came in, when its clock starts
    # Every person got each thing exactly once, whenever the calendar let it go out.
    final = {u: sorted(kinds(wecom, u)) for u in ("zhangsan", "lisi", "zhou")}
    owner_user = (await store.get_rep((await store.get_lead(lead_id)).owner_id)).wecom_userid
    expected = {"zhangsan": ["friend notice"], "lisi": ["command reply", "friend match"], "zhou": []}
    expected[owner_user] = sorted(expected[owner_user] + ["lead card"])
    assert final == expected


async def test_off_hours_with_someone_on_duty(aiohttp_client, engine, clock, store, wecom) -> None:
    at = datetime(2026, 11, 29, 3, 0, tzinfo=SH)  # Sunday 03:00
    cli, lead_id = await play(aiohttp_client, engine, clock, store, wecom, at, CALENDAR,
                              duty={"teams": {"华东": ["r2"]}})
    assert kinds(wecom, "lisi").count("lead card") == 1  # on duty: at once, not held
    lead = await store.get_lead(lead_id)
    assert lead.status == "assigned" and (await store.get_rep(lead.owner_id)).name == "李四"
    assert "已发给值班 李四" in await explain_lead(engine, lead_id, "zh")
    assert kinds(wecom, "zhou") == [] and "lead card" not in kinds(wecom, "zhangsan")


async def test_a_manager_sets_the_duty_by_text_command(aiohttp_client, engine, clock, store, wecom) -> None:
    at = datetime(2026, 11, 28, 22, 30, tzinfo=SH)  # Saturday night
    clock.set(at)
    await store.import_reps(REPS)
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, assignment={"rules": RULES})
    await wecom.send_text("lisi", "值班 李四")
    await wecom.send_text("zhou", "值班 张三")
    await deliver(cli)
    assert "只有经理" in str(wecom.messages_for("lisi")[-1])
    assert "已设置华东值班：张三" in str(wecom.messages_for("zhou")[-1])  # answered at once, at 22:30
    await cli.post("/api/v1/leads", json={"name": "李雷"}, headers=AUTH)
    await deliver(cli)
    assert kinds(wecom, "zhangsan") == ["lead card"]
    await wecom.send_text("lisi", "值班")
    await deliver(cli)
    assert "华东值班：张三" in str(wecom.messages_for("lisi")[-1])


def ctx_settings(calendar: dict):
    from tests.conftest import make_settings

    return make_settings(calendar=calendar).calendar
