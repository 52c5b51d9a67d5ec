"""The manager's daily digest: counts to the manager, the chart to the managers' group robot."""

from __future__ import annotations

from datetime import timedelta

from scheduler.jobs.daily_digest import schedule_digest
from tests.conftest import AUTH
from tests.e2e.conftest import ctx_of, deliver, start_leadbot

REPS = [
    {"id": "m1", "name": "周经理", "wecom_userid": "zhou", "team": "华东", "role": "manager"},
    {"id": "r1", "name": "张三", "wecom_userid": "zhangsan", "team": "华东", "role": "rep", "manager": "m1"},
]


async def test_daily_digest_reaches_the_manager_with_a_chart(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(REPS)
    wecom.robots = {"managers-robot"}
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, wecom={"manager_robot_key": "managers-robot"},
                              sla={"digest_time": "18:00"})
    for name in ("甲", "乙", "丙"):
        await cli.post("/api/v1/leads", json={"name": f"客户{name}"}, headers=AUTH)
    await deliver(cli)
    ctx = ctx_of(cli)
    runner = ctx.services.scheduler
    await schedule_digest(runner.timers, ctx.settings, clock.now())
    clock.advance(timedelta(hours=8, minutes=1))  # 10:00 -> 18:01 Shanghai
    await runner.sweep_once()
    await deliver(cli)
    texts = [str(m.get("content")) for m in wecom.messages_for("zhou")]
    assert any("每日线索简报" in t and "新增: 3" in t for t in texts), [t for t in texts if "简报" in t]
    robot = wecom.robot_messages["managers-robot"]
    assert any(m.get("msgtype") == "image" for m in robot), robot
    assert any("每日线索简报" in str(m) for m in robot)
    # The same digest is not sent twice, however often the job runs.
    await schedule_digest(runner.timers, ctx.settings, clock.now())
    await runner.sweep_once()
    await deliver(cli)
    assert sum("每日线索简报" in str(m.get("content")) for m in wecom.messages_for("zhou")) == 1
