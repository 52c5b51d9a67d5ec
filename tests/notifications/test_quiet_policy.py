"""Quiet hours hold only what can wait, and /metrics says how much is held and for how long."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry

from store.outbox import NewOutboxItem, OutboxRepo
from leadbot.clock import ManualClock
from notifications.cli_report import outbox_report
from notifications.quiet_hours import REPLY, time_policy_line
from notifications.testing import FakeSender
from tests.conftest import make_settings
from tests.notifications.conftest import add_rep, lead_card

SH = ZoneInfo("Asia/Shanghai")
SATURDAY_NIGHT = datetime(2026, 11, 28, 22, 30, tzinfo=SH)
MONDAY_9 = datetime(2026, 11, 30, 9, 0, tzinfo=SH)


def gauge(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value(name) or 0.0


async def test_a_reply_to_a_persons_own_action_is_never_held(
        engine, repo: OutboxRepo, clock: ManualClock, sender: FakeSender, make_worker) -> None:
    rep = await add_rep(engine, clock, wecom="u1", delivery="card")
    clock.set(SATURDAY_NIGHT)
    # Even where escalations wait for the morning, a command reply and a friend-match card go now.
    settings = make_settings(calendar={"quiet_hours_break_for_escalations": False})
    await repo.enqueue(NewOutboxItem(key="cmd:wecom:1", channel="wecom", kind="text", recipient="u1",
                                     payload={"text": "线索 #3 …", REPLY: True}, urgent=True))
    await repo.enqueue(NewOutboxItem(key="friend:1", channel="wecom", kind="card", recipient="u1", rep_id=rep,
                                     payload={"text": "这位好友是 客户A", REPLY: True}))
    await repo.enqueue(lead_card(rep, "u1", 7))
    await make_worker(settings=settings).drain()
    assert sorted(m.key for m in sender.delivered) == ["cmd:wecom:1", "friend:1"]
    held = await repo.get_by_key(f"lead:7:offer:{rep}")
    assert held.state == "pending" and held.next_attempt_at == MONDAY_9


async def test_a_round_the_clock_sla_holds_nothing(
        engine, repo: OutboxRepo, clock: ManualClock, sender: FakeSender, make_worker) -> None:
    rep = await add_rep(engine, clock, wecom="u1", delivery="card")
    clock.set(SATURDAY_NIGHT)
    settings = make_settings(sla={"working_time": False})
    await repo.enqueue(lead_card(rep, "u1", 7))
    await make_worker(settings=settings).drain()
    assert [m.key for m in sender.delivered] == [f"lead:7:offer:{rep}"]
    assert "no message is held" in time_policy_line(settings, "en")
    assert "held until the next working window" in time_policy_line(make_settings(), "en")
    assert "暂存到下一个工作时段" in time_policy_line(make_settings(), "zh")


async def test_metrics_count_held_messages_and_their_age(
        engine, repo: OutboxRepo, clock: ManualClock, sender: FakeSender, make_worker,
        registry: CollectorRegistry) -> None:
    rep = await add_rep(engine, clock, wecom="u1", delivery="card")
    clock.set(SATURDAY_NIGHT)
    await repo.enqueue_many([lead_card(rep, "u1", 1), lead_card(rep, "u1", 2)])
    worker = make_worker(gauge_interval=0)
    await worker.drain()
    assert gauge(registry, "leadbot_outbox_held") == 2
    clock.advance(timedelta(hours=3))
    await worker.run_once()
    assert gauge(registry, "leadbot_outbox_held") == 2
    assert gauge(registry, "leadbot_outbox_held_oldest_seconds") == 3 * 3600
    report = await outbox_report(engine)
    assert report.count("next=2026-11-30 09:00 Asia/Shanghai") == 2 and "quiet hours" in report
    clock.set(MONDAY_9)
    await worker.drain()
    assert len(sender.delivered) == 2
    assert gauge(registry, "leadbot_outbox_held") == 0 and gauge(registry, "leadbot_outbox_held_oldest_seconds") == 0
