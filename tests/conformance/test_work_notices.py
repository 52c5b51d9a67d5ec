"""Work notices are confirmed with getsendresult (D3), and the robot's one-to-one batchSend lists
are acted on (D7): a rep DingTalk will not show the notice to gets it as the robot's text, a
flow-controlled send is retried, an invalid user is reported, and nothing counts as delivered
until something reached the rep."""

from __future__ import annotations

from sqlalchemy import select

from bot.context import CTX
from store.models import OutboxItem
from store.outbox import NewOutboxItem
from tests.conformance.conftest import DT_REPS, start_dingtalk_leadbot, tick


async def _state(engine) -> dict[str, str]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(OutboxItem.idempotency_key, OutboxItem.state))).all()
    return dict(rows)


async def _rep_id(store, userid: str) -> int:
    rep = await store.rep_by_platform_id("dingtalk", userid)
    assert rep is not None
    return rep.id


async def test_over_the_daily_limit_goes_as_robot_text_after_flow_control(aiohttp_client, engine, clock, store,
                                                                          dingtalk) -> None:
    await store.import_reps(DT_REPS)
    cli = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk)
    outbox = cli.app[CTX].services.outbox
    rep = await _rep_id(store, "dt_chen")
    dingtalk.set_fault("work_notice_over_limit", times=1)  # accepted, then forbidden (143105)
    dingtalk.set_fault("batch_flow_control", times=1)  # and the robot's first try flow-controlled
    await outbox.enqueue(NewOutboxItem(key="notice:1", channel="dingtalk", kind="text", recipient="dt_chen",
                                       payload={"text": "新线索：韩梅梅"}, rep_id=rep, urgent=True))
    await tick(cli, clock)
    states = await _state(engine)
    assert states["notice:1"] == "fallback"  # not "sent": the rep was not reached by it
    assert states["notice:1:via:robot"] == "pending"  # flow-controlled: retried, not dropped
    assert dingtalk.calls_to("/topapi/message/corpconversation/getsendresult")
    assert dingtalk.robot_messages == []
    await tick(cli, clock, 61)
    assert (await _state(engine))["notice:1:via:robot"] == "sent"
    [msg] = dingtalk.robot_messages
    assert msg["user"] == "dt_chen" and "韩梅梅" in msg["param"]["content"]


async def test_invalid_everywhere_is_reported_not_counted_as_sent(aiohttp_client, engine, clock, store,
                                                                   dingtalk) -> None:
    # 周 is the admin here: dead letters alert the admins.
    await store.import_reps([{**DT_REPS[0], "role": "admin"}, DT_REPS[1]])
    cli = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk)
    outbox = cli.app[CTX].services.outbox
    rep = await _rep_id(store, "dt_chen")
    dingtalk.set_fault("work_notice_invalid", times=1)
    dingtalk.set_fault("batch_invalid", times=1)
    await outbox.enqueue(NewOutboxItem(key="notice:2", channel="dingtalk", kind="text", recipient="dt_chen",
                                       payload={"text": "新线索：李华"}, rep_id=rep, urgent=True))
    await tick(cli, clock)
    states = await _state(engine)
    assert states["notice:2"] == "fallback" and states["notice:2:via:robot"] == "dead"
    # The admins hear about it (the dead-letter alert), which does reach them.
    assert any(k.startswith("alert:outbox-dead:") for k in states)
    assert not any("李华" in str(n["msg"]) for n in dingtalk.notices_for("dt_chen"))


async def test_a_reached_notice_is_confirmed(aiohttp_client, engine, clock, store, dingtalk) -> None:
    await store.import_reps(DT_REPS)
    cli = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk)
    outbox = cli.app[CTX].services.outbox
    await outbox.enqueue(NewOutboxItem(key="notice:3", channel="dingtalk", kind="text", recipient="dt_chen",
                                       payload={"text": "新线索：王芳"}, urgent=True))
    await tick(cli, clock)
    async with engine.connect() as conn:
        result = (await conn.execute(select(OutboxItem.result).where(OutboxItem.idempotency_key == "notice:3"))
                  ).scalar_one()
    assert result["confirmed"] is True and result["task_id"]
