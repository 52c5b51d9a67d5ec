"""kill -9 of `leadbot serve` in the middle of a burst of leads and callbacks, restart, resend what
was not acknowledged (as sources and platforms do): nothing acknowledged is lost, nothing is
stored twice, and the events left unprocessed by the crash are processed after the restart."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest

from sandbox.wecom import SimulatedWeCom
from tests.conftest import AUTH
from tests.faults.serve import WECOM, LeadbotProcess, fresh_database, rows, scalar

N = int(os.environ.get("LEADBOT_CRASH_N", "150"))  # leads, and as many callbacks


def _callbacks(n: int) -> list[tuple[str, dict[str, str], bytes]]:
    """(dedupe id, query, body): text messages with unique MsgIds, encrypted as WeCom sends them."""
    sim = SimulatedWeCom(**WECOM)
    out = []
    for i in range(n):
        plain = (f"<xml><ToUserName><![CDATA[{WECOM['corp_id']}]]></ToUserName><FromUserName><![CDATA[user{i % 7}]]>"
                 f"</FromUserName><CreateTime>{int(sim.now().timestamp())}</CreateTime><MsgType><![CDATA[text]]>"
                 f"</MsgType><Content><![CDATA[hello {i}]]></Content><MsgId>{7000000 + i}</MsgId></xml>")
        query, body = sim.encrypt_callback(plain)
        out.append((f"wecom:msg:{7000000 + i}", query, body))
    return out


async def _send_all(base: str, leads: list[int], callbacks: list[tuple[str, dict, bytes]],
                    kill_after: int | None, server: LeadbotProcess) -> tuple[set[int], set[str]]:
    """Sends everything with 16 in flight; kill -9 once `kill_after` acks have come back. Returns
    what was acknowledged (2xx)."""
    acked_leads: set[int] = set()
    acked_cbs: set[str] = set()
    jobs: list[tuple[str, object]] = [("lead", i) for i in leads] + [("cb", c) for c in callbacks]
    random.Random(7).shuffle(jobs)
    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    killed = asyncio.Event()

    async def worker(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            kind, item = queue.get_nowait()
            try:
                if kind == "lead":
                    async with http.post(base + "/api/v1/leads", json={"name": f"客户{item}", "phone": f"138{item:08d}",
                                                                       "channel": "crash"},
                                         headers={**AUTH, "Idempotency-Key": f"crash-{item}"}) as r:
                        if r.status in (200, 201):
                            acked_leads.add(item)
                else:
                    key, query, body = item
                    async with http.post(f"{base}/callbacks/wecom?{urlencode(query)}", data=body) as r:
                        if r.status == 200:
                            acked_cbs.add(key)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass  # not acknowledged: the sender will try again
            if kill_after is not None and not killed.is_set() and len(acked_leads) + len(acked_cbs) >= kill_after:
                killed.set()
                server.kill()

    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await asyncio.gather(*(worker(http) for _ in range(16)))
    return acked_leads, acked_cbs


async def test_kill_9_mid_burst_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    leads = list(range(N))
    callbacks = _callbacks(N)
    async with fresh_database(tmp_path) as db:
        server = await LeadbotProcess(tmp_path, db, name="first").start()
        try:
            acked_leads, acked_cbs = await _send_all(server.base, leads, callbacks, kill_after=N // 2, server=server)
        finally:
            server.kill()
        assert server.proc.returncode == -9
        assert 0 < len(acked_leads) + len(acked_cbs) < 2 * N, "the kill did not land mid-burst"

        # What was acknowledged before the kill is durable, even with no process running.
        stored_keys = {r[0] for r in await rows(db, "SELECT intake_key FROM leads")}
        assert {f"idem:crash-{i}" for i in acked_leads} <= stored_keys
        stored_cbs = {r[0] for r in await rows(db, "SELECT dedupe_key FROM inbox")}
        assert acked_cbs <= stored_cbs

        # Restart, and resend: everything not acknowledged, plus every acknowledged one again (a
        # platform that missed our answer resends too).
        server = await LeadbotProcess(tmp_path, db, name="second").start()
        try:
            again_leads, again_cbs = await _send_all(server.base, leads, callbacks, kill_after=None, server=server)
            assert again_leads == set(leads) and again_cbs == {c[0] for c in callbacks}

            assert await scalar(db, "SELECT count(*) FROM leads") == N
            assert await scalar(db, "SELECT count(DISTINCT intake_key) FROM leads") == N
            assert await scalar(db, "SELECT count(*) FROM inbox WHERE dedupe_key LIKE 'wecom:msg:%'") == N
            # The restarted process works off what the crash left: nothing stays pending or half-done.
            for _ in range(100):
                left = await scalar(db, "SELECT count(*) FROM inbox WHERE state IN ('pending', 'processing')")
                if left == 0:
                    break
                await asyncio.sleep(0.2)
            assert left == 0, f"{left} inbox rows still unprocessed after the restart"
        finally:
            server.stop()


@pytest.mark.slow
async def test_kill_9_repeatedly(tmp_path: Path) -> None:
    """Three crashes in a row at different points of the same burst."""
    leads = list(range(N))
    callbacks = _callbacks(N)
    async with fresh_database(tmp_path) as db:
        for round_, point in enumerate((N // 4, N // 2, N)):
            server = await LeadbotProcess(tmp_path, db, name=f"round{round_}").start()
            try:
                await _send_all(server.base, leads, callbacks, kill_after=point, server=server)
            finally:
                server.kill()
        server = await LeadbotProcess(tmp_path, db, name="final").start()
        try:
            acked_leads, acked_cbs = await _send_all(server.base, leads, callbacks, kill_after=None, server=server)
            assert len(acked_leads) == N and len(acked_cbs) == N
            assert await scalar(db, "SELECT count(*) FROM leads") == N
            assert await scalar(db, "SELECT count(*) FROM inbox WHERE dedupe_key LIKE 'wecom:msg:%'") == N
        finally:
            server.stop()
