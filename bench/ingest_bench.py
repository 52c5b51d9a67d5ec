"""Callback ingest: WeCom-encrypted callbacks through leadbot's whole inbound path (verify, decrypt,
dedupe, durable inbox row, ack) against a bare aiohttp handler that only verifies and decrypts,
measured in the same run.

    .venv/bin/python bench/ingest_bench.py [--quick] [--count 6000] [--concurrency 32]
                                           [--rate 1000] [--seconds 5] [--db URL]

Three servers run one after another, each in a process of its own (so the load generator has the
other core): `baseline` (the same CallbackCrypto, no database, answers ""), `per_request` (leadbot
with one inbox transaction per callback) and `group_commit` (leadbot as shipped: concurrent
callbacks share a commit). Each is measured twice:
  - throughput: `--count` distinct callbacks sent as fast as `--concurrency` keep-alive
    connections allow (closed loop); callbacks/s and ack latency;
  - latency at a fixed rate: `--rate` callbacks/s for `--seconds` (open loop, latency counted from
    the scheduled send time, so queueing is not hidden); p50/p99/max ack latency.
Prints one JSON object; `ratio` is leadbot's callbacks/s over the baseline's. The generator is a
minimal raw-socket HTTP/1.1 client (aiohttp's client would cost more CPU than the servers).
The inbox processor is not started: handling the events is not part of the ack path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WECOM = dict(corp_id="wwbenchcorp0000001", secret="bench-secret", agent_id=1000002, token="BenchToken",
             encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")


# ------------------------------------------------------------------------------------ servers

def _serve(mode: str, port: int, db: str, log_level: str, switch_interval: float = 0.0) -> None:
    """Runs in the child process."""
    if switch_interval:
        sys.setswitchinterval(switch_interval)
    from aiohttp import web

    from leadbot.logs import configure_logging
    from leadbot.settings import settings_from_mapping

    configure_logging("json", log_level)
    if mode == "baseline":
        from bot.platforms.wecom.crypto import CallbackCrypto, CallbackRejected

        crypto = CallbackCrypto(WECOM["token"], WECOM["encoding_aes_key"], WECOM["corp_id"])

        async def handler(request: web.Request) -> web.Response:
            q = request.query
            try:
                ts = q["timestamp"]
                if not ts.isdigit() or abs(time.time() - int(ts)) > 300:
                    return web.Response(status=403)
                crypto.decrypt_body(q["msg_signature"], ts, q["nonce"], await request.read())
            except (CallbackRejected, KeyError):
                return web.Response(status=400)
            return web.Response(text="")

        app = web.Application()
        app.router.add_post("/callbacks/wecom", handler)
        app.router.add_get("/healthz", lambda r: web.json_response({"ok": True}))
    else:
        from bot.app import create_app
        from bot.context import CTX
        from store.db import create_engine
        from store.migrate import upgrade

        settings = settings_from_mapping({"wecom": dict(WECOM, api_base="http://127.0.0.1:9"),
                                          "database": {"url": db},
                                          "server": {"host": "127.0.0.1", "port": port,
                                                     "log_level": log_level, "log_format": "json"}}, environ={})

        async def _prepare() -> None:
            engine = create_engine(db)
            await upgrade(engine)
            await engine.dispose()

        asyncio.run(_prepare())
        app = create_app(settings, start_workers=False)
        app[CTX].inbox.group_commit = mode == "group_commit"
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, mode: str, db: str, log_level: str, switch_interval: float = 0.0) -> None:
        self.mode, self.db, self.log_level = mode, db, log_level
        self.switch_interval = switch_interval
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Server":
        # Logs go to a file, as a deployment's would (a pipe nobody reads would block the server).
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", self.mode, "--port", str(self.port),
                                      "--db", self.db, "--log-level", self.log_level,
                                      "--switch-interval", str(self.switch_interval)],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"{self.mode} server exited: {self.log.read().decode()[-800:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.mode} server did not start")

    def __exit__(self, *exc: Any) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


# ------------------------------------------------------------------------------------ load

def make_callbacks(n: int, tag: str) -> list[bytes]:
    """n distinct text-message callbacks, encrypted and signed as WeCom sends them, as raw requests."""
    from sandbox.wecom import SimulatedWeCom

    sim = SimulatedWeCom(**WECOM)
    now = int(time.time())
    out = []
    for i in range(n):
        plain = (f"<xml><ToUserName><![CDATA[{WECOM['corp_id']}]]></ToUserName><FromUserName><![CDATA[user{i % 500}]]>"
                 f"</FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                 f"<Content><![CDATA[跟进客户 {tag}-{i}]]></Content><MsgId>{tag}{i:09d}</MsgId>"
                 f"<AgentID>{WECOM['agent_id']}</AgentID></xml>")
        query, body = sim.encrypt_callback(plain, timestamp=now)
        head = (f"POST /callbacks/wecom?{urlencode(query)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        out.append(head + body)
    return out


class Conn:
    """One keep-alive HTTP/1.1 connection: send a prepared request, read one response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> "Conn":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def call(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _summary(lat: list[float]) -> dict[str, float]:
    return {"p50_ms": round(_pct(lat, 50) * 1000, 3), "p99_ms": round(_pct(lat, 99) * 1000, 3),
            "max_ms": round(max(lat) * 1000, 3) if lat else 0.0,
            "mean_ms": round(statistics.fmean(lat) * 1000, 3) if lat else 0.0}


async def closed_loop(port: int, requests: list[bytes], concurrency: int) -> dict[str, Any]:
    conns = [await Conn.open(port) for _ in range(concurrency)]
    latencies: list[float] = []
    errors = 0
    it = iter(requests)

    async def worker(conn: Conn) -> None:
        nonlocal errors
        for req in it:
            t0 = time.perf_counter()
            status = await conn.call(req)
            latencies.append(time.perf_counter() - t0)
            errors += status != 200

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - started
    for c in conns:
        c.close()
    return {"callbacks": len(latencies), "seconds": round(elapsed, 3), "per_s": round(len(latencies) / elapsed, 1),
            "errors": errors, **_summary(latencies)}


async def open_loop(port: int, requests: list[bytes], rate: float, max_conns: int = 128) -> dict[str, Any]:
    """Sends requests[i] at start + i/rate; a request waits for a free connection if none is idle
    (that wait counts as latency)."""
    idle: asyncio.Queue[Conn] = asyncio.Queue()
    opened = 0
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def one(i: int, req: bytes) -> None:
        nonlocal opened, errors
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if idle.empty() and opened < max_conns:
            opened += 1
            conn = await Conn.open(port)
        else:
            conn = await idle.get()
        status = await conn.call(req)
        latencies.append(loop.time() - due)
        errors += status != 200
        idle.put_nowait(conn)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
    elapsed = time.perf_counter() - t0
    while not idle.empty():
        idle.get_nowait().close()
    return {"target_per_s": rate, "callbacks": len(latencies), "achieved_per_s": round(len(latencies) / elapsed, 1),
            "connections": opened, "errors": errors, **_summary(latencies)}


def _count_rows(db: str) -> int:
    from sqlalchemy import text

    from store.db import create_engine

    async def count() -> int:
        engine = create_engine(db)
        async with engine.connect() as conn:
            n = (await conn.execute(text("SELECT count(*) FROM inbox"))).scalar_one()
        await engine.dispose()
        return n

    return asyncio.run(count())


def _fresh_db(base: str, tmp: Path, mode: str) -> str:
    if not base:
        return f"sqlite+aiosqlite:///{tmp}/{mode}.db"
    # PostgreSQL: a schema per mode would need search_path plumbing; use the database and clear inbox.
    from sqlalchemy import text

    from store.db import create_engine
    from store.migrate import upgrade

    async def reset() -> None:
        engine = create_engine(base)
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM inbox"))
        await engine.dispose()

    asyncio.run(reset())
    return base


def _median_round(rounds: list[dict[str, Any]], key: str) -> dict[str, Any]:
    ordered = sorted(rounds, key=lambda r: r[key]["per_s" if key == "throughput" else "p99_ms"])
    return ordered[len(ordered) // 2][key]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The modes run interleaved, `--rounds` times, and each reports its median round: a busy
    machine then slows all three alike instead of whichever happened to run during the noise."""
    modes = [m for m in args.modes.split(",") if m]
    rounds: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="leadbot-ingest-") as tmp:
        for r in range(args.rounds):
            for mode in modes:
                db = _fresh_db(args.db, Path(tmp), f"{mode}{r}") if mode != "baseline" else ""
                burst = make_callbacks(args.count, f"{mode[:1]}{r}1")
                steady = make_callbacks(int(args.rate * args.seconds), f"{mode[:1]}{r}2")
                warm = make_callbacks(200, f"{mode[:1]}{r}0")
                with Server(mode, db or "sqlite+aiosqlite:///unused.db", args.log_level, args.switch_interval) as server:
                    asyncio.run(closed_loop(server.port, warm, 8))
                    throughput = asyncio.run(closed_loop(server.port, burst, args.concurrency))
                    latency = asyncio.run(open_loop(server.port, steady, args.rate))
                rounds[mode].append({"throughput": throughput, "at_rate": latency})
                if db:
                    stored = _count_rows(db)
                    expected = len(warm) + len(burst) + len(steady)
                    rows.setdefault(mode, {"stored": 0, "sent": 0})
                    rows[mode]["stored"] += stored
                    rows[mode]["sent"] += expected
    results: dict[str, Any] = {}
    for mode in modes:
        results[mode] = {"throughput": _median_round(rounds[mode], "throughput"),
                         "at_rate": _median_round(rounds[mode], "at_rate"),
                         "rounds_per_s": [x["throughput"]["per_s"] for x in rounds[mode]],
                         "rounds_p99_ms_at_rate": [x["at_rate"]["p99_ms"] for x in rounds[mode]]}
        if mode in rows:
            results[mode]["inbox_rows"] = rows[mode]
            results[mode]["all_acked_stored"] = rows[mode]["stored"] == rows[mode]["sent"]
    base = results.get("baseline", {}).get("throughput", {}).get("per_s", 0)
    for mode in ("per_request", "group_commit"):
        if mode in results:
            results[mode]["ratio"] = round(results[mode]["throughput"]["per_s"] / base, 3) if base else None
    gc = results.get("group_commit", {})
    ratio = gc.get("ratio")
    p99 = gc.get("at_rate", {}).get("p99_ms")
    return {
        "bench": "ingest",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "system": platform.system(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
        "db": "postgresql" if args.db else "sqlite",
        "params": {"count": args.count, "concurrency": args.concurrency, "rate": args.rate, "seconds": args.seconds,
                   "rounds": args.rounds, "log_level": args.log_level},
        "results": results,
        "summary": {"baseline_per_s": base, "leadbot_per_s": gc.get("throughput", {}).get("per_s"), "ratio": ratio,
                    "per_request_ratio": results.get("per_request", {}).get("ratio"),
                    "p50_ms_at_rate": gc.get("at_rate", {}).get("p50_ms"), "p99_ms_at_rate": p99,
                    "target": {"ratio": 0.75, "p99_ms": 10.0, "rate": args.rate},
                    "meets_target": bool(ratio and p99 is not None and ratio >= 0.75 and p99 < 10.0)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=6000, help="callbacks in the throughput phase")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=1000.0, help="callbacks/s in the latency phase")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the latency phase")
    parser.add_argument("--db", default=os.environ.get("LEADBOT_BENCH_DATABASE_URL", ""),
                        help="postgresql+asyncpg://... (default: a temporary SQLite file per server)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--quick", action="store_true", help="2,000 callbacks and 2 s at the rate")
    parser.add_argument("--switch-interval", type=float, default=0.0,
                        help="sys.setswitchinterval in the servers (0: Python's default, 5 ms)")
    parser.add_argument("--modes", default="baseline,per_request,group_commit")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; the median is reported")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.port, args.db, args.log_level, args.switch_interval)
        return
    if args.quick:
        args.count, args.seconds, args.rounds = min(args.count, 2000), min(args.seconds, 2.0), 1
    print(json.dumps(run(args), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
