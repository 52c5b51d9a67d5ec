from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from store.outbox import NewOutboxItem, OutboxRepo
from leadbot.clock import ManualClock
from notifications.cli_report import outbox_report, outbox_requeue_dead
from notifications.testing import FakeSender, SimulatedCrash
from tests.conftest import PG_URL, make_settings
from tests.notifications.conftest import add_rep, lead_card

SH = ZoneInfo("Asia/Shanghai")


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_card_is_sent_once_with_platform_ids_and_card_copy(
        engine, repo: OutboxRepo, clock, sender: FakeSender, make_worker, registry) -> None:
    rep = await add_rep(engine, clock, wecom="zhangsan", delivery="card")
    await repo.enqueue(lead_card(rep, "zhangsan", 7))
    worker = make_worker()
    assert await worker.drain() == 1
    [msg] = sender.delivered
    assert msg.form == "card" and msg.recipient == "zhangsan" and msg.dedupe_id.startswith("lb")
    row = await repo.get_by_key(f"lead:7:offer:{rep}")
    assert row.state == "sent" and row.result["task_id"] == msg.dedupe_id and row.result["response_code"]
    [card] = await repo.cards_for_lead(7)
    assert card.card_ref == msg.dedupe_id and card.platform == "wecom" and card.response_code == row.result["response_code"]
    assert metric(registry, "leadbot_outbox_sent_total", channel="wecom", form="card") == 1
    assert await worker.drain() == 0  # nothing twice


async def test_burst_of_200_leads_to_one_rep_loses_nothing(
        engine, repo: OutboxRepo, clock: ManualClock, sender: FakeSender, make_worker, registry) -> None:
    rep = await add_rep(engine, clock, wecom="zhangsan", delivery="card")
    await repo.enqueue_many([lead_card(rep, "zhangsan", i) for i in range(1, 201)])
    worker = make_worker(batch_size=50)  # smaller than the burst: the look-ahead takes the rest
    await worker.drain()
    seen = sender.seen_by("zhangsan")
    # Never more than WeCom's 30 per member per minute (the excess would be silently dropped).
    assert len(seen) == 30
    individual = [m for m in seen if not m.payload.get("digest")]
    [digest] = [m for m in seen if m.payload.get("digest")]
    assert len(individual) == 29 and digest.payload["count"] == 171
    assert digest.payload["text"].startswith("你有 171 条新线索")
    # Every lead is either delivered on its own or referenced by the digest.
    referenced = {m.lead_id for m in individual} | set(digest.payload["lead_ids"])
    assert referenced == set(range(1, 201))
    counts = await repo.counts()
    assert counts == {"sent": 30, "rolled_up": 171}
    rolled = await repo.list(("rolled_up",), 500)
    assert {r.result["rolled_into"] for r in rolled} == {digest.key}
    assert metric(registry, "leadbot_outbox_rolled_up_total", channel="wecom") == 171

    # A second burst within the same minute waits for the window, then becomes one digest.
    await repo.enqueue_many([lead_card(rep, "zhangsan", i) for i in range(201, 211)])
    assert await worker.drain() > 0
    assert len(sender.seen_by("zhangsan")) == 30
    pending = await repo.list(("pending",), 50)
    assert len(pending) == 10 and all(p.next_attempt_at > clock.now() for p in pending)
    clock.advance(61)
    await worker.drain()
    seen = sender.seen_by("zhangsan")
    assert len(seen) == 40  # the window slid fully: 10 fit individually
    assert (await repo.counts()).get("pending", 0) == 0


async def test_burst_over_partial_budget_rolls_into_one_digest(
        engine, repo: OutboxRepo, clock: ManualClock, sender: FakeSender, make_worker) -> None:
    rep = await add_rep(engine, clock, wecom="lisi", delivery="card")
    await repo.enqueue_many([lead_card(rep, "lisi", i) for i in range(1, 26)])
    worker = make_worker()
    await worker.drain()
    assert len(sender.delivered) == 25
    clock.advance(10)
    await repo.enqueue_many([lead_card(rep, "lisi", i) for i in range(26, 46)])
    await worker.drain()
    seen = sender.seen_by("lisi")
    assert len(seen) == 30
    assert seen[-1].payload["count"] == 16 and len(seen[-1].payload["lead_ids"]) == 16


async def test_dingtalk_work_notices_fit_the_daily_budget(
        engine, repo: OutboxRepo, clock, sender: FakeSender, make_worker) -> None:
    rep = await add_rep(engine, clock, dingtalk="ding01", delivery="card")
    await repo.enqueue_many([lead_card(rep, "ding01", i, channel="dingtalk") for i in range(1, 201)])
    await make_worker().drain()
    assert len(sender.delivered) == 200 and all(not m.payload.get("digest") for m in sender.delivered)
    for i in (1, 200):
        assert "outTrackId" in (await repo.get_by_key(f"lead:{i}:offer:{rep}")).result


async def test_restart_remembers_the_window(engine, repo: OutboxRepo, clock: ManualClock, make_worker) -> None:
    rep = await add_rep(engine, clock, wecom="wangwu", delivery="card")
    await repo.enqueue_many([lead_card(rep, "wangwu", i) for i in range(1, 31)])
    first = FakeSender()
    await make_worker(sender=first).drain()
    assert len(first.delivered) == 30
    await repo.enqueue_many([lead_card(rep, "wangwu", i) for i in range(31, 41)])
    second = FakeSender()
    worker = make_worker(sender=second, registry=CollectorRegistry())
    await worker.drain()
    assert second.delivered == []


async def test_crash_after_the_platform_accepted_does_not_duplicate(
        engine, repo: OutboxRepo, clock: ManualClock, sender: FakeSender, make_worker) -> None:
    rep = await add_rep(engine, clock, wecom="zhaoliu", delivery="card")
    key = f"lead:1:offer:{rep}"
    await repo.enqueue(lead_card(rep, "zhaoliu", 1))
    sender.crash_after.add(key)
    with pytest.raises(SimulatedCrash):
        await make_worker().run_once()
    assert len(sender.delivered) == 1
    assert (await repo.get_by_key(key)).state == "sending"  # mark-sent never happened
    # A new process: before the lease expires the row is not touched...
    worker = make_worker(registry=CollectorRegistry())
    assert await worker.drain() == 0
    clock.advance(61)
    await worker.drain()
    # ...after it, the row is redelivered with the same dedupe id, which the platform
    # recognises (task_id / outTrackId): the rep sees one card and the row is sent.
    assert [c.redelivery for c in sender.calls] == [False, True]
    assert sender.calls[0].dedupe_id == sender.calls[1].dedupe_id
    assert len(sender.seen_by("zhaoliu")) == 1
    row = await repo.get_by_key(key)
    assert row.state == "sent" and row.attempts == 2


async def test_crash_before_the_send_sends_once_after_the_lease(
        engine, repo: OutboxRepo, clock: ManualClock, sender: FakeSender, make_worker) -> None:
    sender.platform_dedupe = False  # the guarantee here does not rely on the platform
    rep = await add_rep(engine, clock, wecom="sunqi", delivery="card")
    key = f"lead:1:offer:{rep}"
    await repo.enqueue(lead_card(rep, "sunqi", 1))
    sender.crash_before.add(key)
    with pytest.raises(SimulatedCrash):
        await make_worker().run_once()
    assert sender.delivered == []
    worker = make_worker(registry=CollectorRegistry())
    clock.advance(61)
    await worker.drain()
    clock.advance(3600)
    await worker.drain()
    assert len(sender.delivered) == 1
    assert (await repo.get_by_key(key)).state == "sent"


async def test_transient_errors_back_off_then_succeed(
        engine, repo: OutboxRepo, clock: ManualClock, sender: FakeSender, make_worker, registry) -> None:
    rep = await add_rep(engine, clock, wecom="u1", delivery="card")
    key = f"lead:1:offer:{rep}"
    await repo.enqueue(lead_card(rep, "u1", 1))
    sender.transient[key] = 2
    worker = make_worker(rng=lambda: 1.0)
    await worker.drain()
    row = await repo.get_by_key(key)
    assert row.state == "pending" and row.next_attempt_at == clock.now() + timedelta(seconds=2)
    clock.advance(2)
    await worker.drain()
    row = await repo.get_by_key(key)
    assert row.next_attempt_at == clock.now() + timedelta(seconds=4)  # exponential
    clock.advance(4)
    await worker.drain()
    assert (await repo.get_by_key(key)).state == "sent"
    assert metric(registry, "leadbot_outbox_failures_total", channel="wecom", error_kind="retry") == 2


async def test_text_profile_gets_plain_text_with_a_working_link(
        engine, repo: OutboxRepo, clock, sender: FakeSender, make_worker) -> None:
    rep = await add_rep(engine, clock, wecom="u1", delivery="text")
    await repo.enqueue(lead_card(rep, "u1", 5))
    await make_worker(link_for=lambda e, r: f"https://leadbot.example/a/T{e.lead_id}-{r.id}").drain()
    [msg] = sender.delivered
    assert msg.form == "text" and msg.link == f"https://leadbot.example/a/T5-{rep}"
    assert msg.text.startswith("新线索：客户5") and msg.text.endswith(msg.link)
    assert await repo.cards_for_lead(5) == []


async def test_both_profile_sends_card_and_text(engine, repo: OutboxRepo, clock, sender: FakeSender, make_worker) -> None:
    rep = await add_rep(engine, clock, wecom="u1", delivery="both")
    await repo.enqueue(lead_card(rep, "u1", 5))
    await make_worker().drain()
    assert sorted(m.form for m in sender.delivered) == ["card", "text"]


async def test_card_unsupported_falls_back_to_text_and_switches_auto_to_both(
        engine, repo: OutboxRepo, clock, sender: FakeSender, make_worker) -> None:
    rep = await add_rep(engine, clock, wecom="ios01", delivery="auto")
    sender.card_failures[("wecom", "ios01")] = "card_unsupported"
    await repo.enqueue(lead_card(rep, "ios01", 1))
    worker = make_worker()
    await worker.drain()
    [msg] = sender.delivered
    assert msg.form == "text" and msg.link and msg.lead_id == 1
    first = await repo.get_by_key(f"lead:1:offer:{rep}")
    assert first.state == "fallback" and first.result["superseded_by"] == f"lead:1:offer:{rep}:text"
    assert (await repo.rep_contacts([rep]))[rep].delivery == "both"
    # From now on the rep gets both forms (the card still fails here, the text arrives).
    del sender.card_failures[("wecom", "ios01")]
    await repo.enqueue(lead_card(rep, "ios01", 2))
    await worker.drain()
    assert sorted(m.form for m in sender.delivered if m.lead_id == 2) == ["card", "text"]


async def test_invalid_user_falls_back_to_the_other_platform(
        engine, repo: OutboxRepo, clock, sender: FakeSender, make_worker) -> None:
    rep = await add_rep(engine, clock, wecom="gone", dingtalk="ding77", delivery="card")
    sender.failures[("wecom", "gone")] = "invalid_user"
    await repo.enqueue(lead_card(rep, "gone", 1))
    await make_worker().drain()
    [msg] = sender.delivered
    assert msg.channel == "dingtalk" and msg.recipient == "ding77" and msg.form == "card"
    assert (await repo.get_by_key(f"lead:1:offer:{rep}")).state == "fallback"


async def test_many_dead_messages_raise_exactly_one_admin_alert(
        engine, repo: OutboxRepo, clock: ManualClock, sender: FakeSender, make_worker, registry) -> None:
    admin = await add_rep(engine, clock, name="admin", wecom="boss", role="admin")
    await add_rep(engine, clock, name="admin2", dingtalk="boss2", role="admin")
    reps = [await add_rep(engine, clock, wecom=f"left{i}", delivery="card") for i in range(5)]
    for i, rep in enumerate(reps):
        sender.failures[("wecom", f"left{i}")] = "invalid_user"
        await repo.enqueue(lead_card(rep, f"left{i}", 100 + i))
        await repo.enqueue(lead_card(rep, f"left{i}", 200 + i))
    worker = make_worker()
    await worker.drain()
    assert (await repo.counts())["dead"] == 10
    alerts = [m for m in sender.delivered if m.payload.get("alert")]
    assert sorted((m.channel, m.recipient) for m in alerts) == [("dingtalk", "boss2"), ("wecom", "boss")]
    assert alerts[0].urgent and "leadbot outbox" in alerts[0].text
    assert metric(registry, "leadbot_outbox_dead") == 10
    # More dead messages in the same incident: still no new alert.
    sender.failures[("wecom", "left0")] = "permanent"
    await repo.enqueue(lead_card(reps[0], "left0", 300))
    await worker.drain()
    assert len([m for m in sender.delivered if m.payload.get("alert")]) == 2
    # The operator deals with it (requeue closes the incident); a later failure is a new incident.
    report = await outbox_report(engine)
    assert "dead=11" in report and "invalid_user" in report
    assert await outbox_requeue_dead(engine) == 11
    sender.failures.clear()
    await worker.drain()
    assert (await repo.counts()).get("dead", 0) == 0
    sender.failures[("wecom", "left1")] = "permanent"
    await repo.enqueue(lead_card(reps[1], "left1", 400))
    await worker.drain()
    assert len([m for m in sender.delivered if m.payload.get("alert") and m.recipient == "boss"]) == 2
    assert admin  # the first admin got one alert per incident


async def test_retries_exhausted_go_dead(engine, repo: OutboxRepo, clock: ManualClock, sender: FakeSender,
                                         make_worker) -> None:
    rep = await add_rep(engine, clock, wecom="u1", delivery="card")
    key = f"lead:1:offer:{rep}"
    sender.transient[key] = 100
    await repo.enqueue(lead_card(rep, "u1", 1))
    worker = make_worker(max_attempts=3)
    for _ in range(4):
        await worker.drain()
        clock.advance(3600)
    row = await repo.get_by_key(key)
    assert row.state == "dead" and row.attempts == 3 and "gave up" in row.last_error


async def test_quiet_hours_defer_non_urgent_until_working_start(
        engine, repo: OutboxRepo, clock: ManualClock, sender: FakeSender, make_worker) -> None:
    rep = await add_rep(engine, clock, wecom="u1", delivery="card")
    clock.set(datetime(2026, 11, 27, 20, 0, tzinfo=SH))  # Friday evening
    await repo.enqueue(lead_card(rep, "u1", 1))
    await repo.enqueue(NewOutboxItem(key="esc:2", channel="wecom", kind="text", recipient="u1",
                                     payload={"text": "升级：线索 2 超时未跟进"}, rep_id=rep, lead_id=2, urgent=True))
    worker = make_worker()
    await worker.drain()
    assert [m.key for m in sender.delivered] == ["esc:2"]  # escalations break through
    row = await repo.get_by_key(f"lead:1:offer:{rep}")
    assert row.state == "pending" and row.attempts == 0
    assert row.next_attempt_at == datetime(2026, 11, 30, 9, 0, tzinfo=SH)
    clock.set(datetime(2026, 11, 30, 9, 0, tzinfo=SH))
    await worker.drain()
    assert [m.key for m in sender.delivered] == ["esc:2", f"lead:1:offer:{rep}"]


async def test_quiet_hours_hold_escalations_when_configured(
        engine, repo: OutboxRepo, clock: ManualClock, sender: FakeSender, make_worker) -> None:
    clock.set(datetime(2026, 11, 23, 22, 0, tzinfo=SH))
    await repo.enqueue(NewOutboxItem(key="esc:1", channel="wecom", kind="text", recipient="m1",
                                     payload={"text": "升级"}, urgent=True))
    settings = make_settings(calendar={"quiet_hours_break_for_escalations": False})
    await make_worker(settings=settings).drain()
    assert sender.delivered == []


@pytest.mark.skipif(not PG_URL, reason="several workers share one outbox on PostgreSQL only")
async def test_two_workers_on_postgresql_never_double_send(
        engine: AsyncEngine, repo: OutboxRepo, clock: ManualClock, make_worker) -> None:
    items = [lead_card(1000 + r, f"user{r}", r * 10 + i) for r in range(60) for i in range(3)]
    await repo.enqueue_many(items)
    shared = FakeSender(latency=0.002, platform_dedupe=False)
    a = make_worker(sender=shared, batch_size=20, registry=CollectorRegistry())
    b = make_worker(sender=shared, batch_size=20, registry=CollectorRegistry())
    await asyncio.gather(a.drain(), b.drain(), a.drain(), b.drain())
    keys = [m.key for m in shared.calls]
    assert len(keys) == len(set(keys)) == len(items)
    assert await repo.counts() == {"sent": len(items)}


async def test_two_processes_share_one_reps_window(engine, repo: OutboxRepo, clock: ManualClock, make_worker) -> None:
    """Two running processes (two workers, each with its own in-memory windows) deliver to the
    same rep: the second sees the first one's sends in the outbox, so together they stay under
    WeCom's 30 a minute instead of 30 each."""
    rep = await add_rep(engine, clock, wecom="qianqi", delivery="card")
    first, second = FakeSender(), FakeSender()
    a = make_worker(sender=first)
    b = make_worker(sender=second, registry=CollectorRegistry())
    await repo.enqueue_many([lead_card(rep, "qianqi", i) for i in range(1, 26)])
    await a.drain()
    assert len(first.delivered) == 25
    clock.advance(5)
    await repo.enqueue_many([lead_card(rep, "qianqi", i) for i in range(26, 41)])
    await b.drain()
    assert len(first.delivered) + len(second.seen_by("qianqi")) <= 30
    assert 0 < len(second.seen_by("qianqi")) <= 5  # what was left of the minute, the rest rolled up
    clock.advance(60)
    await b.drain()
    sent_or_rolled = {row.idempotency_key for row in await repo.list(("sent", "rolled_up"), limit=100)}
    assert all(f"lead:{i}:offer:{rep}" in sent_or_rolled for i in range(1, 41))  # nothing lost


async def _until(predicate, what: str) -> None:
    for _ in range(500):  # a bounded wait for the background loop (no SLA time involved)
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the background loop never got to: {what}")


async def test_a_lone_card_costs_one_tick_and_what_a_tick_writes_goes_out_at_once(
        engine, repo: OutboxRepo, clock, sender: FakeSender, make_worker) -> None:
    """The background loop ticks when there is news, not once more after every card (an empty
    tick cost a lone card ~15% of its delivery CPU); what a tick writes itself (a text copy, a
    fallback) wakes it, so nothing waits for the poll (an hour here)."""
    plain = await add_rep(engine, clock, wecom="u1", delivery="card")
    both = await add_rep(engine, clock, wecom="u2", delivery="both")
    ios = await add_rep(engine, clock, wecom="ios", delivery="auto")
    sender.card_failures[("wecom", "ios")] = "card_unsupported"
    worker = make_worker(poll_interval=3600)
    ticks = 0
    tick = worker.run_once

    async def counted() -> int:
        nonlocal ticks
        ticks += 1
        return await tick()

    worker.run_once = counted  # type: ignore[method-assign]
    await worker.start()
    try:
        await _until(lambda: ticks == 1, "the first tick")
        await repo.enqueue(lead_card(plain, "u1", 1))
        worker.wake()
        await _until(lambda: len(sender.delivered) == 1, "the card")
        await asyncio.sleep(0.05)  # room for a needless tick to show
        assert ticks == 2
        await repo.enqueue(lead_card(both, "u2", 2))
        await repo.enqueue(lead_card(ios, "ios", 3))
        worker.wake()
        await _until(lambda: len(sender.delivered) == 4, "the card, its text copy and the fallback text")
        assert sorted((m.recipient, m.form) for m in sender.delivered[1:]) == [
            ("ios", "text"), ("u2", "card"), ("u2", "text")]
    finally:
        await worker.stop()


async def test_only_a_card_sent_late_is_handed_back_for_a_redraw(
        engine, repo: OutboxRepo, clock: ManualClock, sender: FakeSender, make_worker) -> None:
    """A card sent at once shows the lead as it is; one that waited LATE_CARD or more may not, so
    the worker hands its registered copy to the flow; a failing redraw leaves the send recorded."""
    from notifications.worker import LATE_CARD

    rep = await add_rep(engine, clock, wecom="zhangsan", delivery="card")
    seen: list[tuple[int | None, str]] = []

    async def redraw(copy) -> None:
        seen.append((copy.lead_id, copy.card_ref))
        if copy.lead_id == 3:
            raise RuntimeError("the flow failed")

    worker = make_worker(after_late_card=redraw)
    await repo.enqueue(lead_card(rep, "zhangsan", 1))
    assert await worker.drain() == 1
    assert seen == []  # sent at once
    await repo.enqueue(lead_card(rep, "zhangsan", 2))
    await repo.enqueue(lead_card(rep, "zhangsan", 3))
    clock.advance(LATE_CARD + timedelta(seconds=1))
    assert await worker.drain() == 2
    assert sorted(lead for lead, _ in seen) == [2, 3]
    assert {ref for _, ref in seen} == {m.dedupe_id for m in sender.delivered[1:]}
    assert (await repo.get_by_key(f"lead:3:offer:{rep}")).state == "sent"


async def test_the_delivery_lease_comes_from_the_config(engine, clock) -> None:
    """[delivery] lease_seconds and send_timeout_seconds reach the app's worker (a crashed
    process's rows wait that long, not a fixed minute)."""
    from bot.app import create_app
    from bot.context import CTX

    app = create_app(make_settings(delivery={"lease_seconds": 9, "send_timeout_seconds": 4}), engine=engine,
                     clock=clock, start_workers=False)
    worker = app[CTX].services.delivery_worker
    assert worker is not None and (worker.lease_seconds, worker.send_timeout) == (9, 4)
