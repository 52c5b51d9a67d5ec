"""Delivery throughput: outbox -> DeliveryWorker -> platform, against a same-run baseline.

    python bench/delivery_bench.py [--messages 2000] [--recipients 200] [--latency-ms 2] [--kind text|card]
                                   [--trickle 200] [--db URL]

Prints one JSON object. ``baseline_per_s`` sends the same messages straight to the same fake
platform with the same concurrency (no outbox, no database), so ``overhead_ratio`` is what
durability costs on this machine. The fake platform answers after ``--latency-ms`` like a
round-trip to the API would. A second scenario replays the issue's burst (200 leads to one
WeCom rep) and reports what was sent, rolled up and lost.

``cpu_us_per_message`` is the event-loop thread's CPU (``time.thread_time``) spent delivering,
divided by the messages delivered: the driver's own thread (aiosqlite) is not in it, the
loop's share of SQLAlchemy, the worker and the fake platform is. ``statements_per_message``
counts the SQL statements sent meanwhile. ``--kind card`` sends cards to reps on the ``card``
profile (rep look-ups and card records included). The trickle scenario delivers ``--trickle``
cards one per tick, as a live server does when leads arrive one at a time: there a tick's
statements (and those of the empty tick after it) are not shared by a batch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, insert  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from store.db import create_engine  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import Rep  # noqa: E402
from store.outbox import NewOutboxItem, OutboxRepo  # noqa: E402
from leadbot.clock import SystemClock  # noqa: E402
from leadbot.settings import settings_from_mapping  # noqa: E402
from notifications.sender import OutboundMessage, dedupe_id  # noqa: E402
from notifications.testing import FakeSender  # noqa: E402
from notifications.worker import DeliveryWorker  # noqa: E402


def items(n: int, recipients: int, prefix: str = "bench", kind: str = "text",
          rep_ids: list[int] | None = None) -> list[NewOutboxItem]:
    return [NewOutboxItem(key=f"{prefix}:lead:{i}:offer", channel="wecom", kind=kind,
                          recipient=f"user{i % recipients}", lead_id=i,
                          rep_id=rep_ids[i % recipients] if rep_ids else None,
                          payload={"text": f"新线索：客户{i}（上海）", "summary": f"客户{i}"})
            for i in range(n)]


async def add_reps(engine: AsyncEngine, recipients: int) -> list[int]:
    """One rep per recipient, on the card profile, so cards go out as cards."""
    now = SystemClock().now()
    async with engine.begin() as conn:
        rows = await conn.execute(insert(Rep).returning(Rep.id), [
            dict(external_id=f"bench{i}", name=f"rep{i}", wecom_userid=f"user{i}", delivery="card",
                 created_at=now, updated_at=now) for i in range(recipients)])
        return [r for (r,) in rows]


class Meter:
    """Event-loop thread CPU and SQL statements over a measured stretch."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statements = 0
        self.cpu = 0.0
        event.listen(engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, *_: object) -> None:
        self.statements += 1

    def start(self) -> None:
        self.statements = 0
        self.cpu = time.thread_time()

    def stop(self) -> tuple[float, int]:
        """CPU seconds and statements since start()."""
        return time.thread_time() - self.cpu, self.statements


def per_message(cpu: float, statements: int, messages: int) -> dict:
    return {"cpu_us_per_message": round(cpu / messages * 1e6, 1) if messages else None,
            "statements_per_message": round(statements / messages, 2) if messages else None}


async def baseline(n: int, recipients: int, latency: float, concurrency: int) -> float:
    sender = FakeSender(latency=latency)
    sem = asyncio.Semaphore(concurrency)
    msgs = [OutboundMessage(key=i.key, dedupe_id=dedupe_id(i.key), channel=i.channel, kind=i.kind, form="text",
                            recipient=i.recipient, payload=i.payload, text=i.payload["text"])
            for i in items(n, recipients)]

    async def one(m: OutboundMessage) -> None:
        async with sem:
            await sender.send(m)

    started = time.perf_counter()
    await asyncio.gather(*(one(m) for m in msgs))
    return n / (time.perf_counter() - started)


async def through_outbox(url: str, n: int, recipients: int, latency: float, concurrency: int, kind: str,
                         trickle: int) -> dict:
    engine = create_engine(url)
    await upgrade(engine)
    settings = settings_from_mapping({}, environ={})
    repo = OutboxRepo(engine)
    rep_ids = await add_reps(engine, recipients)
    meter = Meter(engine)
    started = time.perf_counter()
    batch = items(n, recipients, kind=kind, rep_ids=rep_ids if kind == "card" else None)
    for i in range(0, n, 500):
        await repo.enqueue_many(batch[i:i + 500])
    enqueue_s = time.perf_counter() - started
    sender = FakeSender(latency=latency)
    worker = DeliveryWorker(engine, sender, SystemClock(), settings, quiet_hours=False, batch_size=200,
                            concurrency=concurrency)
    started = time.perf_counter()
    meter.start()
    await worker.drain(max_ticks=100000)
    deliver_s = time.perf_counter() - started
    batched = per_message(*meter.stop(), len(sender.delivered))
    counts = await repo.counts()

    # Trickle: one card per tick (and the empty tick that follows it), carried by that card alone.
    trickle_sender = FakeSender(latency=latency)
    trickle_worker = DeliveryWorker(engine, trickle_sender, SystemClock(), settings, quiet_hours=False,
                                    concurrency=concurrency)
    trickle_items = items(trickle, recipients, prefix="trickle", kind="card", rep_ids=rep_ids)
    ticks_cpu, ticks_statements = 0.0, 0
    for item in trickle_items:
        await repo.enqueue(item)
        meter.start()
        await trickle_worker.drain()
        cpu, statements = meter.stop()
        ticks_cpu += cpu
        ticks_statements += statements

    # The burst scenario: 200 leads to one rep within a second.
    burst_sender = FakeSender(latency=latency)
    burst_worker = DeliveryWorker(engine, burst_sender, SystemClock(), settings, quiet_hours=False,
                                  registry=None, concurrency=concurrency)
    burst = [NewOutboxItem(key=f"burst:lead:{i}", channel="wecom", kind="card", recipient="busy_rep", lead_id=i,
                           payload={"text": f"新线索：客户{i}", "summary": f"客户{i}"}) for i in range(200)]
    await repo.enqueue_many(burst)
    await burst_worker.drain()
    delivered = burst_sender.seen_by("busy_rep")
    digest_leads = {lid for m in delivered if m.payload.get("digest") for lid in m.payload["lead_ids"]}
    individual = {m.lead_id for m in delivered if not m.payload.get("digest")}
    await engine.dispose()
    return {"enqueue_per_s": round(n / enqueue_s, 1), "delivered_per_s": round(counts.get("sent", 0) / deliver_s, 1),
            "delivered": counts.get("sent", 0), "duplicates": len(sender.calls) - len(sender.delivered), **batched,
            "trickle_one_per_tick": {"delivered": len(trickle_sender.delivered),
                                     **per_message(ticks_cpu, ticks_statements, len(trickle_sender.delivered))},
            "burst_200_one_rep": {"messages_sent": len(delivered), "individual": len(individual),
                                  "rolled_into_digest": len(digest_leads),
                                  "lost": 200 - len(individual | digest_leads)}}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--recipients", type=int, default=200, help="spread so no recipient exceeds 30/min")
    parser.add_argument("--latency-ms", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--kind", choices=("text", "card"), default="text",
                        help="card: to reps on the card profile, with card records")
    parser.add_argument("--trickle", type=int, default=200, help="cards delivered one per tick")
    parser.add_argument("--db", default="", help="SQLAlchemy URL; default: a temporary SQLite file")
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite+aiosqlite:///{tmp}/bench.db"
        base = await baseline(args.messages, args.recipients, latency, args.concurrency)
        out = await through_outbox(url, args.messages, args.recipients, latency, args.concurrency, args.kind,
                                   args.trickle)
    print(json.dumps({"bench": "delivery", "platform": "fake", "db": url.split(":", 1)[0],
                      "messages": args.messages, "recipients": args.recipients, "kind": args.kind,
                      "latency_ms": args.latency_ms,
                      "concurrency": args.concurrency, "baseline_per_s": round(base, 1), **out,
                      "overhead_ratio": round(base / out["delivered_per_s"], 2) if out["delivered_per_s"] else None},
                     ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
