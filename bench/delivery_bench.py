"""Delivery throughput: outbox -> DeliveryWorker -> platform, against a same-run baseline.

    python bench/delivery_bench.py [--messages 2000] [--recipients 200] [--latency-ms 2] [--db URL]

Prints one JSON object. ``baseline_per_s`` sends the same messages straight to the same fake
platform with the same concurrency (no outbox, no database), so ``overhead_ratio`` is what
durability costs on this machine. The fake platform answers after ``--latency-ms`` like a
round-trip to the API would. A second scenario replays the issue's burst (200 leads to one
WeCom rep) and reports what was sent, rolled up and lost.
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

from crm_bridge.db import create_engine  # noqa: E402
from crm_bridge.migrate import upgrade  # noqa: E402
from crm_bridge.outbox import NewOutboxItem, OutboxRepo  # noqa: E402
from leadbot.clock import SystemClock  # noqa: E402
from leadbot.settings import settings_from_mapping  # noqa: E402
from notifications.sender import OutboundMessage, dedupe_id  # noqa: E402
from notifications.testing import FakeSender  # noqa: E402
from notifications.worker import DeliveryWorker  # noqa: E402


def items(n: int, recipients: int, prefix: str = "bench") -> list[NewOutboxItem]:
    return [NewOutboxItem(key=f"{prefix}:lead:{i}:offer", channel="wecom", kind="text",
                          recipient=f"user{i % recipients}", lead_id=i,
                          payload={"text": f"新线索：客户{i}（上海）", "summary": f"客户{i}"})
            for i in range(n)]


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


async def through_outbox(url: str, n: int, recipients: int, latency: float, concurrency: int) -> dict:
    engine = create_engine(url)
    await upgrade(engine)
    settings = settings_from_mapping({}, environ={})
    repo = OutboxRepo(engine)
    started = time.perf_counter()
    batch = items(n, recipients)
    for i in range(0, n, 500):
        await repo.enqueue_many(batch[i:i + 500])
    enqueue_s = time.perf_counter() - started
    sender = FakeSender(latency=latency)
    worker = DeliveryWorker(engine, sender, SystemClock(), settings, quiet_hours=False, batch_size=200,
                            concurrency=concurrency)
    started = time.perf_counter()
    await worker.drain(max_ticks=100000)
    deliver_s = time.perf_counter() - started
    counts = await repo.counts()

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
            "delivered": counts.get("sent", 0), "duplicates": len(sender.calls) - len(sender.delivered),
            "burst_200_one_rep": {"messages_sent": len(delivered), "individual": len(individual),
                                  "rolled_into_digest": len(digest_leads),
                                  "lost": 200 - len(individual | digest_leads)}}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--recipients", type=int, default=200, help="spread so no recipient exceeds 30/min")
    parser.add_argument("--latency-ms", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--db", default="", help="SQLAlchemy URL; default: a temporary SQLite file")
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite+aiosqlite:///{tmp}/bench.db"
        base = await baseline(args.messages, args.recipients, latency, args.concurrency)
        out = await through_outbox(url, args.messages, args.recipients, latency, args.concurrency)
    print(json.dumps({"bench": "delivery", "platform": "fake", "db": url.split(":", 1)[0],
                      "messages": args.messages, "recipients": args.recipients, "latency_ms": args.latency_ms,
                      "concurrency": args.concurrency, "baseline_per_s": round(base, 1), **out,
                      "overhead_ratio": round(base / out["delivered_per_s"], 2) if out["delivered_per_s"] else None},
                     ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
