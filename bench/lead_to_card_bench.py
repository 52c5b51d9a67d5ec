"""Lead to card: intake POST -> routing -> outbox -> delivery worker -> the card accepted by the
simulated WeCom API, at a sustained rate; p50/p99 of that whole path.

    .venv/bin/python bench/lead_to_card_bench.py --quick              # 20 leads/s for 5 s
    .venv/bin/python bench/lead_to_card_bench.py --rate 50 --seconds 60  # the issue's run

Prints one JSON object. leadbot runs as a server process of its own (real clock, real workers,
a temporary SQLite file or --db), as it is deployed: the load generator and the simulated WeCom
(loopback) share this process and the other core. Enough reps that nobody passes WeCom's 30
messages a minute. Latency runs from the scheduled send time of the POST to the moment the
sandbox accepted that lead's template card. Baseline in the same run: the intake POST alone (its
201), so the routing and delivery path's share is visible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
import tempfile
import time
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WECOM = dict(corp_id="wwbenchcorp0000002", secret="bench-secret", agent_id=1000002, token="BenchToken",
             encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
TOKEN = "bench-intake-token"


def _settings(db: str, api_base: str) -> Any:
    from leadbot.settings import settings_from_mapping

    return settings_from_mapping({
        "wecom": dict(WECOM, api_base=api_base), "database": {"url": db},
        "intake": {"api_tokens": [TOKEN]},
        "server": {"public_url": "http://127.0.0.1:1", "log_level": "warning", "log_format": "json"},
        "calendar": {"working_hours": "00:00-23:59", "working_days": [1, 2, 3, 4, 5, 6, 7], "holidays": []},
    }, environ={})


def _serve(port: int, db: str, api_base: str) -> None:
    """Runs in the child process: leadbot as `leadbot serve` would run it."""
    from aiohttp import web

    from bot.app import create_app, for_serving
    from leadbot.logs import configure_logging

    configure_logging("json", "warning")
    web.run_app(for_serving(create_app(_settings(db, api_base))), host="127.0.0.1", port=port, print=None, access_log=None)


def _start_server(db: str, api_base: str, log: Any) -> tuple[subprocess.Popen[bytes], int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--db", db, "--api-base", api_base],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"leadbot exited: {log.read().decode()[-800:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("leadbot did not start")


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """(all threads, the event loop's thread) CPU seconds of a process so far (Linux /proc)."""
    def read(path: str) -> float:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    try:
        return read(f"/proc/{pid}/stat"), read(f"/proc/{pid}/task/{pid}/stat")
    except OSError:
        return 0.0, 0.0


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else 0.0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    from store.db import create_engine
    from store.migrate import upgrade
    from crm.sql_store import SqlCRMStore
    from leadbot.logs import configure_logging
    from sandbox.wecom import SimulatedWeCom

    configure_logging("json", "warning")
    logging.getLogger().setLevel(logging.WARNING)
    total = int(args.rate * args.seconds)
    reps = max(20, int(args.rate * 60 / 20))  # ≤ 20 cards per rep per minute at this rate
    sandbox = SimulatedWeCom(**WECOM)
    accepted: dict[str, float] = {}

    def spy(record: dict[str, Any]) -> None:
        if record["msgtype"] == "template_card":
            text = json.dumps(record["content"], ensure_ascii=False)
            at = text.find("BENCH")
            if at >= 0:
                accepted.setdefault(text[at:at + 11], time.perf_counter())

    sandbox.on_accepted.append(spy)
    await sandbox.start()
    with tempfile.TemporaryDirectory(prefix="leadbot-l2c-") as tmp, tempfile.TemporaryFile() as log:
        db = args.db or f"sqlite+aiosqlite:///{tmp}/leadbot.db"
        engine = create_engine(db)
        await upgrade(engine)
        await SqlCRMStore(engine).import_reps([{"id": f"r{i}", "name": f"销售{i}", "wecom_userid": f"user{i}",
                                                "team": "华东", "role": "rep", "weight": "1"} for i in range(reps)])
        await engine.dispose()
        proc, port = _start_server(db, sandbox.base_url, log)
        base = f"http://127.0.0.1:{port}"
        sent: dict[str, float] = {}
        intake_lat: list[float] = []
        errors = 0
        failures: list[str] = []
        async with aiohttp.ClientSession() as http:
            loop = asyncio.get_running_loop()
            start = loop.time() + 0.1
            t0 = time.perf_counter() + 0.1
            cpu_before = _cpu_seconds(proc.pid)

            async def post(i: int) -> None:
                nonlocal errors
                due = start + i / args.rate
                await asyncio.sleep(max(0.0, due - loop.time()))
                marker = f"BENCH{i:06d}"
                sent[marker] = t0 + i / args.rate
                async with http.post(base + "/api/v1/leads", json={"name": f"客户{i}", "company": marker,
                                                                   "phone": f"136{i:08d}", "channel": "bench"},
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                    body = await r.read()
                    if r.status != 201:
                        errors += 1
                        failures.append(f"{r.status} {body[:200].decode(errors='replace')}")
                intake_lat.append(time.perf_counter() - sent[marker])

            await asyncio.gather(*(post(i) for i in range(total)))
            deadline = time.perf_counter() + 30
            while len(accepted) < total and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            cpu_after = _cpu_seconds(proc.pid)
        proc.terminate()
        if failures:
            log.seek(0)
            print(f"intake failures: {failures[:5]}\nleadbot's log:\n{log.read().decode()[-3000:]}", file=sys.stderr)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    await sandbox.stop()
    lat = [accepted[m] - sent[m] for m in sent if m in accepted]
    ms = lambda v: round(v * 1000, 1)  # noqa: E731
    return {
        "bench": "lead_to_card",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
        "db": "postgresql" if args.db else "sqlite",
        "params": {"rate": args.rate, "seconds": args.seconds, "reps": reps},
        # What one lead costs the server, whatever the rate: the number that sets its capacity.
        "server_cpu_ms_per_lead": {"process": round((cpu_after[0] - cpu_before[0]) * 1000 / max(1, total), 2),
                                   "event_loop_thread": round((cpu_after[1] - cpu_before[1]) * 1000 / max(1, total), 2)},
        "baseline_intake_post": {"p50_ms": ms(_pct(intake_lat, 50)), "p99_ms": ms(_pct(intake_lat, 99))},
        "summary": {"rate": args.rate, "seconds": args.seconds, "leads": total, "cards": len(lat),
                    "intake_errors": errors, "p50_ms": ms(_pct(lat, 50)), "p99_ms": ms(_pct(lat, 99)),
                    "max_ms": ms(max(lat)) if lat else None, "target_p99_ms": 250,
                    "meets_target": bool(lat) and len(lat) == total and _pct(lat, 99) < 0.25},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="leads per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--db", default=os.environ.get("LEADBOT_BENCH_DATABASE_URL", ""))
    parser.add_argument("--quick", action="store_true", help="20 leads/s for 5 s")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--api-base", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.db, args.api_base)
        return
    if args.quick:
        args.rate, args.seconds = 20.0, 5.0
    print(json.dumps(asyncio.run(run(args)), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
