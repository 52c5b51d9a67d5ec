"""Routing decisions per second, next to a same-run baseline (a bare SELECT of the team's reps
over the same engine), so numbers from a busy machine still compare.

    .venv/bin/python bench/routing_bench.py [--leads 1000] [--reps 10] [--concurrency 8]
                                            [--url postgresql+asyncpg://postgres@127.0.0.1/test]

Prints one JSON object. SQLite by default (a fresh file in a temp folder).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog  # noqa: E402
from sqlalchemy import select, text  # noqa: E402

from store.db import create_engine, session_factory  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import Lead, Rep, Team  # noqa: E402
from routing import Router  # noqa: E402
from leadbot.clock import ManualClock  # noqa: E402
from leadbot.settings import settings_from_mapping  # noqa: E402


async def seed(engine, now, reps: int, leads: int) -> tuple[int, list[int]]:
    sessions = session_factory(engine)
    async with sessions() as s, s.begin():
        team = Team(name="bench", created_at=now)
        s.add(team)
        await s.flush()
        mgr = Rep(external_id="mgr", name="经理", team_id=team.id, role="manager", created_at=now,
                  updated_at=now, regions=[], product_lines=[], attributes={})
        s.add(mgr)
        for i in range(reps):
            s.add(Rep(external_id=f"r{i}", name=f"rep{i}", team_id=team.id, weight=1 + i % 3,
                      status="on_leave" if i % 7 == 6 else "active", capacity=0, created_at=now,
                      updated_at=now, regions=[], product_lines=[], attributes={}))
        await s.flush()
        team.manager_id = mgr.id
        rows = [Lead(status="new", region="上海", amount=float(1000 * i), created_at=now, updated_at=now,
                     extra={"industry": "制造"}, flags=[]) for i in range(leads)]
        s.add_all(rows)
        await s.flush()
        return team.id, [r.id for r in rows]


async def run(args: argparse.Namespace) -> dict:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    tmp = tempfile.TemporaryDirectory()
    url = args.url or f"sqlite+aiosqlite:///{tmp.name}/bench.db"
    schema = None
    if url.startswith("postgresql"):
        import uuid

        from sqlalchemy.ext.asyncio import create_async_engine

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(url)
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await admin.dispose()
        engine = create_async_engine(url, connect_args={"server_settings": {"search_path": schema}},
                                     pool_size=max(5, args.concurrency), max_overflow=5)
    else:
        engine = create_engine(url)
    try:
        await upgrade(engine)
        clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))  # Monday 10:00 Shanghai
        team_id, leads = await seed(engine, clock.now(), args.reps, args.leads * 2)
        settings = settings_from_mapping({"assignment": {"rules": [
            {"name": "ka", "team": "bench", "match": {"amount": {"min": 10_000_000}}},
            {"name": "east", "team": "bench", "match": {"region": ["上海", "江苏"], "extra.industry": "制造"}},
        ]}}, environ={})
        router = Router(engine, settings.assignment, settings.calendar, clock)
        sessions = session_factory(engine)

        # Baseline: the cheapest read a decision cannot avoid, one round trip per iteration.
        t0 = time.perf_counter()
        for _ in range(args.leads):
            async with sessions() as s:
                (await s.execute(select(Rep).where(Rep.team_id == team_id))).scalars().all()
        baseline = args.leads / (time.perf_counter() - t0)

        sequential_leads, concurrent_leads = leads[:args.leads], leads[args.leads:]
        t0 = time.perf_counter()
        results = [await router.assign(lead_id) for lead_id in sequential_leads]
        sequential = len(sequential_leads) / (time.perf_counter() - t0)

        sem = asyncio.Semaphore(args.concurrency)

        async def one(lead_id: int):
            async with sem:
                return await router.assign(lead_id)

        t0 = time.perf_counter()
        results += await asyncio.gather(*[one(lead_id) for lead_id in concurrent_leads])
        concurrent = len(concurrent_leads) / (time.perf_counter() - t0)
        shares = Counter(r.rep_id for r in results)
        return {
            "bench": "routing",
            "database": engine.dialect.name,
            "leads": args.leads,
            "reps": args.reps,
            "baseline_select_reps_per_s": round(baseline, 1),
            "decisions_per_s": round(sequential, 1),
            "decisions_per_s_concurrent": round(concurrent, 1),
            "concurrency": args.concurrency,
            "ratio_to_baseline": round(sequential / baseline, 3),
            "ms_per_decision": round(1000 / sequential, 3),
            "outcomes": dict(Counter(r.outcome for r in results)),
            "distinct_owners": len(shares),
        }
    finally:
        await engine.dispose()
        if schema:
            admin = create_engine(url)
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()
        tmp.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--url", default="")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), ensure_ascii=False))


if __name__ == "__main__":
    main()
