"""Scale-out: 1 vs 3 `leadbot serve` processes on one PostgreSQL, lead -> first card throughput.

    flock /tmp/leadbot-pg.lock .venv/bin/python bench/scale_out_bench.py \
        --db postgresql+asyncpg://postgres@127.0.0.1:5432/test            # 600 leads, 3 rounds
    ... --quick                                                          # 200 leads, 1 round

Prints one JSON object. Each round starts the processes (the real `leadbot serve`, real clock,
real workers) on a fresh database of their own, posts a burst of leads round-robin over them
(closed loop, --concurrency requests in flight) and waits until the simulated WeCom (in this
process, on loopback) has accepted each lead's first card. Throughput is leads over the time from
the first POST to the last first card; latency runs from a lead's POST to its card. The
1-process run is the baseline, measured in the same rounds (modes interleaved, the median round
reported), so the ratios survive a noisy machine. Enough reps that nobody passes WeCom's 30
messages a minute (cards only, no text copy). CPU a lead: leadbot's processes, and PostgreSQL's
(every `postgres` process on the host, so approximate when something else uses the server).

Without a PostgreSQL URL (--db or LEADBOT_BENCH_DATABASE_URL) it prints {"skipped": ...}: several
processes share nothing but PostgreSQL. Wrap it in the machine's PostgreSQL lock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WECOM = dict(corp_id="wwbenchcorp0000003", secret="bench-secret", agent_id=1000002, token="BenchToken",
             encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
TOKEN = "bench-intake-token"
CARDS_PER_REP = 20  # under WeCom's 30 a minute even if the whole burst lands in one minute


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _ticks(path: str) -> float:
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += _ticks(f"/proc/{pid}/stat")
        except OSError:
            pass
    return total


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds so far of every process named postgres (the server and its backends)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                out[int(entry.name)] = _ticks(str(entry / "stat"))
        except OSError:
            continue
    return out


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else 0.0


class Serve:
    """One `leadbot serve` process with a config file of its own."""

    def __init__(self, tmp: Path, name: str, db: str, api_base: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        sections = {
            "server": {"host": "127.0.0.1", "port": self.port, "public_url": self.base, "log_format": "json",
                       "log_level": "warning", "secret_key": "bench-secret-key-0123456789abcdef"},
            "database": {"url": db},
            "intake": {"api_tokens": [TOKEN]},
            "wecom": dict(WECOM, api_base=api_base),
            "calendar": {"working_hours": "00:00-23:59", "working_days": [1, 2, 3, 4, 5, 6, 7], "holidays": []},
        }
        self.config = tmp / f"{name}.toml"
        self.config.write_text("\n".join(f"[{s}]\n" + "\n".join(f"{k} = {_toml(v)}" for k, v in values.items()) + "\n"
                                         for s, values in sections.items()), encoding="utf-8")
        self.log = tmp / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        leadbot = str(Path(sys.executable).parent / "leadbot")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([leadbot, "serve", "--config", str(self.config)], cwd=self.config.parent,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         env={**os.environ, "LEADBOT_CONFIG": ""})

    async def ready(self, http: Any, wait: float = 90.0) -> None:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"leadbot exited: {self.log.read_text(errors='replace')[-1500:]}")
            try:
                async with http.get(self.base + "/readyz") as r:
                    if r.status == 200:
                        return
            except Exception:  # not listening yet
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError(f"leadbot did not become ready: {self.log.read_text(errors='replace')[-1500:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


async def _fresh_database(admin_url: str) -> str:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from store.db import create_engine

    name = f"leadbot_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url)
    try:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def _drop_database(admin_url: str, db: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from store.db import create_engine

    admin = create_engine(admin_url)
    try:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(db).database}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def one_round(args: argparse.Namespace, processes: int, sandbox: Any, accepted: dict[str, float]) -> dict[str, Any]:
    import aiohttp

    from store.db import create_engine
    from store.migrate import upgrade
    from crm.sql_store import SqlCRMStore

    accepted.clear()
    reps = max(10, -(-args.leads // CARDS_PER_REP))
    db = await _fresh_database(args.db)
    servers: list[Serve] = []
    try:
        engine = create_engine(db)
        await upgrade(engine)  # once, before the processes start (each would upgrade too)
        await SqlCRMStore(engine).import_reps([{"id": f"r{i}", "name": f"销售{i}", "wecom_userid": f"user{i}",
                                                "team": "华东", "role": "rep", "weight": "1", "delivery": "card"}
                                               for i in range(reps)])
        await engine.dispose()
        with tempfile.TemporaryDirectory(prefix="leadbot-scale-") as tmp:
            servers = [Serve(Path(tmp), f"p{i}", db, sandbox.base_url) for i in range(processes)]
            for s in servers:
                s.start()
            timeout = aiohttp.ClientTimeout(total=30)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                await asyncio.gather(*(s.ready(http) for s in servers))
                await asyncio.sleep(args.settle)  # start-up work (sweeps, directory) out of the way
                pids = [s.proc.pid for s in servers if s.proc is not None]
                cpu0, pg0 = _cpu_of(pids), _postgres_cpu()
                sent: dict[str, float] = {}
                acked: list[float] = []
                errors = 0
                queue = list(range(args.leads))
                t0 = time.perf_counter()

                async def client() -> None:
                    nonlocal errors
                    while queue:
                        i = queue.pop(0)
                        marker = f"BENCH{i:06d}"
                        base = servers[i % len(servers)].base
                        sent[marker] = time.perf_counter()
                        try:
                            async with http.post(base + "/api/v1/leads",
                                                 json={"name": f"客户{i}", "company": marker, "phone": f"136{i:08d}",
                                                       "channel": "bench"},
                                                 headers={"Authorization": f"Bearer {TOKEN}",
                                                          "Idempotency-Key": marker}) as r:
                                await r.read()
                                if r.status != 201:
                                    errors += 1
                        except (aiohttp.ClientError, asyncio.TimeoutError):
                            errors += 1
                        acked.append(time.perf_counter())

                await asyncio.gather(*(client() for _ in range(args.concurrency)))
                acked_at = time.perf_counter()
                deadline = acked_at + args.wait
                while len(accepted) < args.leads and time.perf_counter() < deadline:
                    await asyncio.sleep(0.02)
                done_at = max(accepted.values()) if accepted else time.perf_counter()
                cpu1, pg1 = _cpu_of(pids), _postgres_cpu()
        lat = [accepted[m] - sent[m] for m in sent if m in accepted]
        pg = sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items())
        n = max(1, len(lat))
        return {
            "processes": processes, "leads": args.leads, "cards": len(lat), "intake_errors": errors, "reps": reps,
            "leads_per_s": round(len(lat) / max(1e-9, done_at - t0), 1),
            "intake_per_s": round(args.leads / max(1e-9, acked_at - t0), 1),
            "burst_s": round(done_at - t0, 2),
            "p50_ms": round(_pct(lat, 50) * 1000, 1), "p99_ms": round(_pct(lat, 99) * 1000, 1),
            "cpu_ms_per_lead": {"leadbot": round((cpu1 - cpu0) * 1000 / n, 2), "postgres": round(pg * 1000 / n, 2)},
        }
    finally:
        for s in servers:
            s.stop()
        await _drop_database(args.db, db)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import logging

    from leadbot.logs import configure_logging
    from sandbox.wecom import SimulatedWeCom

    configure_logging("json", "warning")
    logging.getLogger().setLevel(logging.WARNING)
    sandbox = SimulatedWeCom(**WECOM, latency=(0.0, args.latency_ms / 1000) if args.latency_ms else None)
    accepted: dict[str, float] = {}
    original = sandbox._message_send

    def spy(body: dict[str, Any]) -> dict[str, Any]:
        answer = original(body)
        if answer.get("errcode") == 0 and body.get("msgtype") == "template_card":
            text = json.dumps(body, ensure_ascii=False)
            at = text.find("BENCH")
            if at >= 0:
                accepted.setdefault(text[at:at + 11], time.perf_counter())
        return answer

    sandbox._message_send = spy  # type: ignore[method-assign]
    await sandbox.start()
    rounds: dict[int, list[dict[str, Any]]] = {1: [], args.processes: []}
    try:
        for _ in range(args.rounds):
            for processes in (1, args.processes):
                rounds[processes].append(await one_round(args, processes, sandbox, accepted))
                print(f"round: {json.dumps(rounds[processes][-1], ensure_ascii=False)}", file=sys.stderr, flush=True)
    finally:
        await sandbox.stop()

    def median(mode: list[dict[str, Any]]) -> dict[str, Any]:
        return sorted(mode, key=lambda r: r["leads_per_s"])[len(mode) // 2]

    base, many = median(rounds[1]), median(rounds[args.processes])
    ratio = lambda key: round(many[key] / base[key], 2) if base[key] else None  # noqa: E731
    # Each round of N processes against the 1-process round just before it: the two ran closest
    # in time, so a neighbour's burst of work on a shared machine skews the pair least.
    pairs = [round(m["leads_per_s"] / b["leads_per_s"], 2) for b, m in zip(rounds[1], rounds[args.processes])
             if b["leads_per_s"]]
    return {
        "bench": "scale_out",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
        "db": "postgresql",
        "params": {"leads": args.leads, "concurrency": args.concurrency, "rounds": args.rounds,
                   "processes": args.processes, "latency_ms": args.latency_ms},
        "rounds": {str(k): v for k, v in rounds.items()},
        "baseline_1_process": base,
        f"with_{args.processes}_processes": many,
        "summary": {
            "baseline_leads_per_s": base["leads_per_s"], "scaled_leads_per_s": many["leads_per_s"],
            "throughput_ratio": ratio("leads_per_s"), "intake_ratio": ratio("intake_per_s"),
            "pair_ratios": pairs, "median_pair_ratio": statistics.median(pairs) if pairs else None,
            "cpu_ms_per_lead_1": base["cpu_ms_per_lead"], "cpu_ms_per_lead_n": many["cpu_ms_per_lead"],
            "p50_ms_1": base["p50_ms"], "p50_ms_n": many["p50_ms"],
            "p99_ms_1": base["p99_ms"], "p99_ms_n": many["p99_ms"],
            "all_cards": all(r["cards"] == r["leads"] and not r["intake_errors"]
                             for mode in rounds.values() for r in mode),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=os.environ.get("LEADBOT_BENCH_DATABASE_URL", ""),
                        help="PostgreSQL URL of a database to create the bench's own databases from")
    parser.add_argument("--leads", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated WeCom answers in 0..N ms")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds after start-up before the burst")
    parser.add_argument("--wait", type=float, default=180.0, help="seconds to wait for the last card")
    parser.add_argument("--quick", action="store_true", help="200 leads, 1 round")
    args = parser.parse_args()
    if not args.db.startswith("postgresql"):
        print(json.dumps({"bench": "scale_out", "skipped": "needs PostgreSQL: --db or LEADBOT_BENCH_DATABASE_URL"}))
        return
    if args.quick:
        args.leads, args.rounds = 200, 1
    print(json.dumps(asyncio.run(run(args)), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
