"""The send budget is one budget in the database, whichever process (worker) sends: reservations
counted before the send, messages in flight included, blocks the platform imposed shared."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from store.outbox import NewOutboxItem, OutboxRepo
from store.send_budget import SendBudget, scope_for
from leadbot.clock import ManualClock
from notifications.sender import DeliveryResult
from notifications.testing import FakeSender
from tests.notifications.conftest import add_rep, lead_card

MINUTE = [(30, 60.0)]


async def test_concurrent_reservations_never_exceed_the_window(engine: AsyncEngine, clock: ManualClock) -> None:
    # Ten reservers (on PostgreSQL: ten connections, as from ten processes) ask for 10 each at once.
    budgets = [SendBudget(engine, holder=f"p{i}") for i in range(10)]
    grants = await asyncio.gather(*(b.reserve("wecom:u1", 10, MINUTE, clock.now()) for b in budgets))
    assert sum(len(g.ids) for g in grants) == 30
    full = [g for g in grants if len(g.ids) < 10]
    # Whoever found the window full learns when the first slot frees: a minute after the first send
    # could have been received (held reservations count until the hold's end).
    assert all(g.next_free > clock.now() for g in full)
    assert await budgets[0].in_window("wecom:u1", clock.now(), 60) == 30
    assert len((await budgets[0].reserve("wecom:u2", 5, MINUTE, clock.now())).ids) == 5  # per scope


async def test_held_released_and_confirmed(engine: AsyncEngine, clock: ManualClock) -> None:
    budget = SendBudget(engine)
    grant = await budget.reserve("wecom:u1", 30, MINUTE, clock.now(), hold=timedelta(seconds=20))
    assert len(grant.ids) == 30 and not (await budget.reserve("wecom:u1", 1, MINUTE, clock.now())).ids
    await budget.release(grant.ids[:5])  # never reached the platform
    again = await budget.reserve("wecom:u1", 10, MINUTE, clock.now(), hold=timedelta(seconds=20))
    assert len(again.ids) == 5
    clock.advance(1)
    await budget.confirm(grant.ids[5:], clock.now())  # answered one second later
    clock.advance(60)
    # The confirmed ones left the window (answered at +1 s); the five reserved again are still
    # held: their holder never answered (crashed), so they count until the hold's end plus a minute.
    late = await budget.reserve("wecom:u1", 30, MINUTE, clock.now())
    assert len(late.ids) == 25
    await budget.release(late.ids)
    clock.advance(20)
    assert len((await budget.reserve("wecom:u1", 30, MINUTE, clock.now())).ids) == 30


def test_robot_scopes_carry_no_secret() -> None:
    scope = scope_for("dingtalk_robot", "https://oapi.dingtalk.com/robot/send?access_token=secret123")
    assert "secret123" not in scope and scope.startswith("dingtalk_robot:h")
    assert scope_for("wecom", "zhangsan") == "wecom:zhangsan"


async def test_two_workers_bursting_to_one_rep_stay_under_the_limit_with_one_digest(
        engine: AsyncEngine, repo: OutboxRepo, clock: ManualClock, make_worker) -> None:
    """Two processes' workers lease different rows of one rep's burst and tick at the same time:
    together they send at most 30, and everything beyond is in a digest or waits for the next slot."""
    rep = await add_rep(engine, clock, wecom="zhaoliu", delivery="card")
    await repo.enqueue_many([lead_card(rep, "zhaoliu", i) for i in range(1, 81)])
    platform = FakeSender(latency=0.001)
    a = make_worker(sender=platform, batch_size=30, registry=CollectorRegistry())
    b = make_worker(sender=platform, batch_size=30, registry=CollectorRegistry())
    await asyncio.gather(a.run_once(), b.run_once())
    await asyncio.gather(a.drain(), b.drain())
    first = platform.seen_by("zhaoliu")
    # The minute's 30 slots: the worker that won the last one rolled what it could gather into it.
    assert len(first) == 30 and len([m for m in first if m.payload.get("digest")]) == 1
    rows = {r.idempotency_key: r for r in await repo.list(("sent", "rolled_up", "pending"), limit=200)}
    assert all(f"lead:{i}:offer:{rep}" in rows for i in range(1, 81))  # nothing lost
    clock.advance(120)
    await asyncio.gather(a.drain(), b.drain())
    seen = platform.seen_by("zhaoliu")
    assert len(seen) <= 60
    delivered = {m.lead_id for m in seen if not m.payload.get("digest")}
    for m in seen:
        if m.payload.get("digest"):
            assert not delivered & set(m.payload["lead_ids"])  # nothing twice
            delivered |= set(m.payload["lead_ids"])
    assert delivered == set(range(1, 81))
    assert (await repo.counts()).get("pending", 0) == 0


class ThrottledRobot(FakeSender):
    """A DingTalk custom robot that answered errcode 410100: a throttle of the robot with the
    platform's 10-minute block as retry-after (bot/platforms/delivery.py classifies it so)."""

    async def send(self, message):  # type: ignore[override]
        self.calls.append(message)
        return DeliveryResult.failed("throttle", "410100 send too fast", retry_after=600, scope="recipient")


async def test_a_throttle_answer_blocks_the_robot_for_every_process(
        engine: AsyncEngine, repo: OutboxRepo, clock: ManualClock, make_worker) -> None:
    hook = "https://oapi.dingtalk.com/robot/send?access_token=abc"
    first = ThrottledRobot()
    a = make_worker(sender=first, registry=CollectorRegistry())
    await repo.enqueue(NewOutboxItem(key="esc:1", channel="dingtalk_robot", kind="robot", recipient=hook,
                                     payload={"text": "升级"}))
    await a.drain()
    assert len(first.calls) == 1
    second = FakeSender()
    b = make_worker(sender=second, registry=CollectorRegistry())  # another process
    await repo.enqueue(NewOutboxItem(key="esc:2", channel="dingtalk_robot", kind="robot", recipient=hook,
                                     payload={"text": "升级"}))
    clock.advance(120)  # past the worker's own backoff, inside the platform's block
    await b.drain()
    assert second.calls == []
    row = await repo.get_by_key("esc:2")
    assert row.state == "pending" and "holds this robot/app back" in row.last_error
    clock.advance(481)
    await b.drain()
    assert {m.key for m in second.delivered} == {"esc:1", "esc:2"}


async def test_a_slow_tick_keeps_its_leases_and_a_lost_one_is_not_finished(
        engine: AsyncEngine, repo: OutboxRepo, clock: ManualClock, make_worker) -> None:
    """The running worker renews the leases of the rows its tick is on: a platform slower than the
    lease does not hand the rows to another process. Rows taken over after an unrenewed lease are
    the new holder's: the former holder's late answer writes nothing."""
    rep = await add_rep(engine, clock, wecom="sunba", delivery="card")
    await repo.enqueue_many([lead_card(rep, "sunba", i) for i in range(1, 4)])

    class SlowPlatform(FakeSender):
        async def send(self, message):  # type: ignore[override]
            # Three answers take 2.4 s of the store's clock against a 0.9 s lease; the heartbeat
            # (every 0.3 s of real time) renews the lease at least once inside each sleep.
            clock.advance(0.4)
            await asyncio.sleep(0.35)
            clock.advance(0.4)
            return await super().send(message)

    slow = SlowPlatform()
    a = make_worker(sender=slow, lease_seconds=0.9, send_timeout=0.8, registry=CollectorRegistry())
    other = FakeSender()
    b = make_worker(sender=other, lease_seconds=0.9, send_timeout=0.8, registry=CollectorRegistry())
    await a.start()
    try:
        for _ in range(500):
            if len(slow.delivered) == 3:
                break
            if slow.calls:
                await b.run_once()  # another process looking for expired leases all along
            await asyncio.sleep(0.01)
    finally:
        await a.stop()
    assert len(slow.delivered) == 3 and other.calls == []
    assert (await repo.counts()) == {"sent": 3}

    # Without renewal (a hung holder) the lease runs out and another worker takes the row; the
    # hung one's answer, when it comes, is fenced off.
    await repo.enqueue(lead_card(rep, "sunba", 9))
    [hung] = await repo.take_due(10, clock.now(), lease_seconds=0.9)
    clock.advance(1)
    assert await b.drain() == 1 and [m.lead_id for m in other.delivered] == [9]
    assert await repo.mark_sent(hung, {"msgid": "late"}) is False
    assert await repo.renew({hung.id: hung.attempts}, 0.9) == set()


def escalation(manager_rep: int, userid: str, lead_id: int, minutes_waiting: int, **kw) -> NewOutboxItem:
    since = (T0 - timedelta(minutes=minutes_waiting)).isoformat()
    return NewOutboxItem(key=f"ft:{lead_id}:e:0:escalate:dm:{manager_rep}", channel=kw.pop("channel", "wecom"),
                         kind="text", recipient=userid, rep_id=manager_rep, lead_id=lead_id, urgent=True,
                         payload={"text": f"线索超时：客户{lead_id}", "storm": "escalation", "team": "华东",
                                  "since": since, "summary": f"客户{lead_id} · 公司{lead_id}",
                                  "link": f"https://leadbot.example/a/t{lead_id}"}, **kw)


T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


async def test_an_escalation_storm_becomes_one_digest_at_once(
        engine: AsyncEngine, repo: OutboxRepo, clock: ManualClock, make_worker) -> None:
    """40 leads time out in the same minute: the manager gets the first few escalations and one
    digest "华东团队 37 条线索超时" naming the leads that waited longest, in the same tick, from two
    processes' workers together; nothing is queued behind its siblings."""
    manager = await add_rep(engine, clock, wecom="boss", role="manager", delivery="text")
    await repo.enqueue_many([escalation(manager, "boss", i, minutes_waiting=i) for i in range(1, 41)])
    platform = FakeSender(latency=0.001)
    a = make_worker(sender=platform, batch_size=15, registry=CollectorRegistry())
    b = make_worker(sender=platform, batch_size=15, registry=CollectorRegistry())
    await asyncio.gather(a.run_once(), b.run_once())
    seen = platform.seen_by("boss")
    digests = [m for m in seen if m.payload.get("storm_digest")]
    singles = [m for m in seen if not m.payload.get("digest")]
    assert len(singles) == 3 and len(digests) >= 1
    covered = [lead for d in digests for lead in d.payload["lead_ids"]] + [m.lead_id for m in singles]
    assert sorted(covered) == list(range(1, 41))  # every escalation, once, in this very tick
    big = max(digests, key=lambda d: d.payload["count"])
    assert big.text.startswith(f"华东团队 {big.payload['count']} 条线索超时")
    worst = [line for line in big.text.splitlines() if line[:2] in ("1.", "2.")]
    top = max(big.payload["lead_ids"])  # waited longest among those rolled
    assert worst[0].startswith(f"1. 客户{top} · 公司{top}") and f"https://leadbot.example/a/t{top}" in worst[0]
    assert (await repo.counts()).get("pending", 0) == 0

    # The next minute a lone escalation goes out as itself again.
    clock.advance(61)
    await repo.enqueue(escalation(manager, "boss", 99, minutes_waiting=1))
    await a.drain()
    assert platform.seen_by("boss")[-1].lead_id == 99 and not platform.seen_by("boss")[-1].payload.get("digest")


async def test_a_storm_that_trickles_in_is_a_few_digests_not_one_per_tick(
        engine: AsyncEngine, repo: OutboxRepo, clock: ManualClock, make_worker) -> None:
    manager = await add_rep(engine, clock, wecom="boss2", role="manager", delivery="text")
    platform = FakeSender()
    worker = make_worker(sender=platform, registry=CollectorRegistry())
    for tick in range(30):  # 4 escalations every 2 s for a minute: 120 in all
        await repo.enqueue_many([escalation(manager, "boss2", tick * 4 + i, minutes_waiting=5) for i in range(4)])
        await worker.drain()
        clock.advance(2)
    clock.advance(60)
    await worker.drain()
    seen = platform.seen_by("boss2")
    covered = [lead for m in seen for lead in (m.payload.get("lead_ids") or [m.lead_id])]
    assert sorted(covered) == list(range(120))  # each escalation once
    # Two minutes of storm (the last escalations wait into the second): per minute at most 3 on
    # their own and 6 digests, instead of 120 messages (4 minutes of WeCom's budget).
    assert len([m for m in seen if not m.payload.get("digest")]) <= 2 * 3
    assert len(seen) <= 2 * (3 + 6)
    assert (await repo.counts()).get("pending", 0) == 0
