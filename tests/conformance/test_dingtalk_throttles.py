"""DingTalk throttles and refusals through the HTTP path: the simulated DingTalk answers each as
DingTalk does (a fault switch per code), and leadbot rides it out: nothing goes dead, every
message reaches its recipient after the throttle. Rows: conformance.md D1, D2, D5, D6."""

from __future__ import annotations

import json

from sqlalchemy import select

from bot.context import CTX
from store.models import KeyValue, OutboxItem
from store.outbox import NewOutboxItem
from tests.conftest import AUTH
from tests.conformance.conftest import DT_REPS, start_dingtalk_leadbot, tick


async def _rows(engine, **where):
    async with engine.connect() as conn:
        stmt = select(OutboxItem.idempotency_key, OutboxItem.state, OutboxItem.channel, OutboxItem.kind,
                      OutboxItem.last_error, OutboxItem.attempts)
        for k, v in where.items():
            stmt = stmt.where(getattr(OutboxItem, k) == v)
        return (await conn.execute(stmt)).all()


async def test_410100_blocks_the_robot_ten_minutes_in_every_process_and_the_escalation_arrives(
        aiohttp_client, engine, clock, store, dingtalk) -> None:
    """D1: a custom robot past 20 a minute answers 410100 and is blocked for 10 minutes: the
    escalation is held (never dead), no process calls the robot during the block, and it
    reaches the managers' group when the block ends."""
    await store.import_reps(DT_REPS)
    webhook, secret = dingtalk.add_custom_robot()
    cli = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk,
                                       dingtalk={"manager_robot_webhook": webhook, "manager_robot_secret": secret})
    other = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk,  # a second process
                                         dingtalk={"manager_robot_webhook": webhook, "manager_robot_secret": secret})
    await cli.post("/api/v1/leads", json={"name": "马丽", "phone": "13655556666"}, headers=AUTH)
    await tick(cli, clock)
    dingtalk.set_fault("robot_410100")  # the robot went over its minute: blocked for 10 minutes
    await tick(cli, clock, 126)
    await tick(cli, clock, 120)  # the escalation is due now
    robot = await _rows(engine, channel="dingtalk_robot")
    assert robot and all(r.state == "pending" for r in robot), robot
    assert any("410100" in (r.last_error or "") for r in robot)
    assert dingtalk.group_messages == []
    refused = len(dingtalk.calls_to("/robot/send"))
    assert refused == 1
    async with engine.connect() as conn:  # the block is shared through the database
        blocks = (await conn.execute(select(KeyValue.key).where(KeyValue.key.like("block:dingtalk_robot:%")))).all()
    assert len(blocks) == 1 and webhook not in blocks[0][0]  # named by a digest: the URL holds a secret
    await tick(other, clock, 240)  # 6 minutes in: still blocked, for the other process too
    await tick(cli, clock, 0)
    assert len(dingtalk.calls_to("/robot/send")) == refused
    dingtalk.clear_fault("robot_410100")
    await tick(other, clock, 361)  # past the 10 minutes
    group = json.dumps(dingtalk.group_messages, ensure_ascii=False, default=str)
    assert "马丽" in group
    assert not await _rows(engine, state="dead")


async def test_660026_is_a_retry_of_that_message(aiohttp_client, engine, clock, store, dingtalk) -> None:
    """D1: 660026 is "send failed, retry": retried after a backoff, the robot is not blocked."""
    await store.import_reps(DT_REPS)
    webhook, secret = dingtalk.add_custom_robot()
    cli = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk,
                                       dingtalk={"manager_robot_webhook": webhook, "manager_robot_secret": secret})
    outbox = cli.app[CTX].services.outbox
    dingtalk.set_fault("robot_660026", times=1)
    await outbox.enqueue(NewOutboxItem(key="esc:1", channel="dingtalk_robot", kind="robot", recipient=webhook,
                                       payload={"text": "线索超时：马丽"}, urgent=True))
    await tick(cli, clock)
    [row] = await _rows(engine, idempotency_key="esc:1")
    assert row.state == "pending" and "660026" in row.last_error and row.attempts == 1
    async with engine.connect() as conn:
        assert (await conn.execute(select(KeyValue.key).where(KeyValue.key.like("block:%")))).all() == []
    await tick(cli, clock, 60)
    assert [m["msg"]["text"]["content"] for m in dingtalk.group_messages] == ["线索超时：马丽"]


async def test_msg_uuid_posts_once_when_the_answer_is_lost(aiohttp_client, engine, clock, store, dingtalk) -> None:
    """D5: the robot posted but the answer never came back; the retry carries the row's msgUuid,
    so the group shows the message once."""
    await store.import_reps(DT_REPS)
    webhook, secret = dingtalk.add_custom_robot()
    cli = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk,
                                       dingtalk={"manager_robot_webhook": webhook, "manager_robot_secret": secret})
    outbox = cli.app[CTX].services.outbox
    dingtalk.set_fault("robot_lost_answer", times=1)
    await outbox.enqueue(NewOutboxItem(key="esc:2", channel="dingtalk_robot", kind="robot", recipient=webhook,
                                       payload={"text": "线索超时：王强"}, urgent=True))
    await tick(cli, clock)
    await tick(cli, clock, 60)
    sends = dingtalk.calls_to("/robot/send")
    assert len(sends) == 2 and sends[0].body["msgUuid"] == sends[1].body["msgUuid"]
    assert len(dingtalk.group_messages) == 1
    [row] = await _rows(engine, idempotency_key="esc:2")
    assert row.state == "sent"


async def _card_through(fault: str, aiohttp_client, engine, clock, store, dingtalk) -> None:
    await store.import_reps(DT_REPS)
    cli = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk)
    dingtalk.set_fault(fault)
    await cli.post("/api/v1/leads", json={"name": "李雷", "phone": "13800001234"}, headers=AUTH)
    await tick(cli, clock)
    rows = await _rows(engine, kind="card")
    assert rows and all(r.state == "pending" for r in rows), rows
    assert not dingtalk.cards and not dingtalk.work_notices
    dingtalk.clear_fault(fault)
    await tick(cli, clock, 301)
    assert any("李雷" in json.dumps(c.card_data, ensure_ascii=False) for c in dingtalk.cards.values())
    assert {r.state for r in await _rows(engine, kind="card")} == {"sent"}
    assert not await _rows(engine, state="dead") and not await _rows(engine, state="fallback")


async def test_403_qpm_limit_is_a_throttle(aiohttp_client, engine, clock, store, dingtalk) -> None:
    """D2: HTTP 403 Forbidden.AccessDenied.QpmLimitForAppkeyAndApi: the card waits and goes as a
    card (not dead, not a text copy)."""
    await _card_through("qpm_403", aiohttp_client, engine, clock, store, dingtalk)


async def test_json_punish_body_is_a_throttle(aiohttp_client, engine, clock, store, dingtalk) -> None:
    """D6: {"status":1111,"wait":5,"punish":"deny"} with HTTP 200 is the IP flood block, not a
    success: the card waits out the 5 minutes."""
    await _card_through("punish", aiohttp_client, engine, clock, store, dingtalk)


async def test_old_api_9000x_are_throttles(aiohttp_client, engine, clock, store, dingtalk) -> None:
    """D2: 90001/90003/90004 ("all calls temporarily refused") hold a work notice back; it is
    delivered afterwards, not dead-lettered."""
    await store.import_reps(DT_REPS)
    cli = await start_dingtalk_leadbot(aiohttp_client, engine, clock, dingtalk)
    outbox = cli.app[CTX].services.outbox
    for code in (90001, 90003, 90004):
        dingtalk.set_fault(f"oapi_{code}")
        await outbox.enqueue(NewOutboxItem(key=f"note:{code}", channel="dingtalk", kind="text", recipient="dt_chen",
                                           payload={"text": f"提醒 {code}"}, urgent=True))
        await tick(cli, clock)
        [row] = await _rows(engine, idempotency_key=f"note:{code}")
        assert row.state == "pending" and str(code) in row.last_error, row
        dingtalk.clear_fault(f"oapi_{code}")
        await tick(cli, clock, 120)
        [row] = await _rows(engine, idempotency_key=f"note:{code}")
        assert row.state == "sent", row
    texts = [n["msg"]["text"]["content"] for n in dingtalk.notices_for("dt_chen")]
    assert all(any(f"提醒 {code}" in t for t in texts) for code in (90001, 90003, 90004))
