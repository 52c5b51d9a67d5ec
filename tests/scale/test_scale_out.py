"""Scale-out: several `leadbot serve` processes on one PostgreSQL database behind a round-robin of
leads and callbacks, with retries that land on another process. Every lead is stored and
assigned once, every friend event handled once, and every card reaches the simulated WeCom once.

    LEADBOT_SCALE_N=1000 LEADBOT_SCALE_PROCESSES=3  # the issue's full numbers (default: 150 and 2)
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest

from crm_bridge.db import create_engine
from crm_bridge.migrate import upgrade
from crm_bridge.sql_store import SqlCRMStore
from sandbox.wecom import SimulatedWeCom
from tests.conftest import AUTH, PG_URL
from tests.faults.serve import WECOM, LeadbotProcess, fresh_database, rows, scalar

N = int(os.environ.get("LEADBOT_SCALE_N", "150"))
PROCESSES = int(os.environ.get("LEADBOT_SCALE_PROCESSES", "2"))

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not PG_URL, reason="several processes share PostgreSQL (LEADBOT_TEST_DATABASE_URL)")]


async def test_processes_share_one_database_exactly_once(tmp_path: Path) -> None:
    reps = max(20, N // 8)  # keeps every rep under WeCom's 30 messages a minute
    sandbox = SimulatedWeCom(**WECOM)
    await sandbox.start()
    servers: list[LeadbotProcess] = []
    async with fresh_database(tmp_path) as db:
        try:
            engine = create_engine(db)
            await upgrade(engine)  # once, before the processes start (each would upgrade too)
            await SqlCRMStore(engine).import_reps(
                [{"id": f"r{i}", "name": f"销售{i}", "wecom_userid": f"user{i}", "team": "华东", "role": "rep",
                  "weight": "1"} for i in range(reps)])
            await engine.dispose()
            for i in range(PROCESSES):
                # Working hours all day, every day: the test runs on the real clock, and cards wait
                # out quiet hours otherwise.
                always = {"calendar": {"working_hours": "00:00-23:59", "working_days": [1, 2, 3, 4, 5, 6, 7],
                                       "holidays": []}}
                servers.append(await LeadbotProcess(tmp_path, db, api_base=sandbox.base_url, name=f"p{i}",
                                                    extra=always).start())

            turn = itertools.cycle(range(PROCESSES))
            rng = random.Random(11)

            async def deliver(http: aiohttp.ClientSession, send) -> None:
                """Round robin; a failed or 'lost' answer is retried on the next process, and now and
                then an answered request is retried anyway (the platform never saw our answer)."""
                for attempt in range(8):
                    server = servers[next(turn)]
                    try:
                        status = await send(http, server.base)
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        status = 0
                    if status in (200, 201) and rng.random() > 0.2:
                        return
                    await asyncio.sleep(0.05 * attempt)
                raise AssertionError("not acknowledged after 8 tries")

            def lead_sender(i: int):
                async def send(http: aiohttp.ClientSession, base: str) -> int:
                    async with http.post(base + "/api/v1/leads", json={"name": f"客户{i}", "phone": f"137{i:08d}",
                                                                       "company": f"公司{i}", "channel": "scale"},
                                         headers={**AUTH, "Idempotency-Key": f"scale-{i}"}) as r:
                        return r.status
                return send

            def friend_sender(i: int):
                now = int(sandbox.now().timestamp())
                plain = (f"<xml><ToUserName><![CDATA[{WECOM['corp_id']}]]></ToUserName><FromUserName><![CDATA[sys]]>"
                         f"</FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
                         f"<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]>"
                         f"</ChangeType><UserID><![CDATA[user{i % reps}]]></UserID><ExternalUserID><![CDATA[wmext{i:06d}]]>"
                         f"</ExternalUserID></xml>")

                async def send(http: aiohttp.ClientSession, base: str) -> int:
                    query, body = sandbox.encrypt_callback(plain, timestamp=now)  # a retry re-encrypts
                    async with http.post(f"{base}/callbacks/wecom?{urlencode(query)}", data=body) as r:
                        return r.status
                return send

            jobs = [lead_sender(i) for i in range(N)] + [friend_sender(i) for i in range(N)]
            rng.shuffle(jobs)
            queue: asyncio.Queue = asyncio.Queue()
            for job in jobs:
                queue.put_nowait(job)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
                async def worker() -> None:
                    while not queue.empty():
                        await deliver(http, queue.get_nowait())

                await asyncio.gather(*(worker() for _ in range(16)))

            # Processing and delivery finish, shared by the processes (bounded wait).
            for _ in range(300):
                busy = await scalar(db, "SELECT (SELECT count(*) FROM inbox WHERE state IN ('pending','processing'))"
                                        " + (SELECT count(*) FROM outbox WHERE state = 'pending')")
                if busy == 0:
                    break
                await asyncio.sleep(0.5)
            assert busy == 0, f"{busy} inbox/outbox rows still pending"
            # Stored and assigned once (a new friend nobody knew becomes a lead of its own too).
            assert await scalar(db, "SELECT count(*) FROM leads WHERE source_channel = 'scale'") == N
            assert await scalar(db, "SELECT count(*) FROM leads") == await scalar(
                db, "SELECT count(DISTINCT intake_key) FROM leads")
            assert await scalar(db, "SELECT count(*) FROM leads") <= 2 * N
            twice = await rows(db, "SELECT lead_id, count(*) FROM routing_decisions GROUP BY lead_id HAVING count(*) > 1")
            assert twice == [], f"leads routed more than once: {twice[:5]}"
            friend_rows = await rows(db, "SELECT dedupe_key, kind FROM inbox ORDER BY id")
            assert len([r for r in friend_rows if "add_external_contact" in r[1]]) == N, friend_rows[:6]

            assert await scalar(db, "SELECT count(*) FROM inbox WHERE state = 'failed'") == 0
            unowned = await scalar(db, "SELECT count(*) FROM leads WHERE owner_id IS NULL")
            assert unowned == 0

            # Every card reached WeCom exactly once: no task_id accepted twice, one offer per lead.
            accepted = [c for c in sandbox.calls_to("message/send")
                        if c.response.get("errcode") == 0 and c.body.get("msgtype") == "template_card"]
            per_task = Counter(c.body["template_card"].get("task_id") for c in accepted)
            assert per_task and max(per_task.values()) == 1, per_task.most_common(3)
            sent_cards = await scalar(db, "SELECT count(*) FROM outbox WHERE kind = 'card' AND channel = 'wecom' "
                                          "AND state = 'sent'")
            assert len(accepted) == sent_cards
            per_lead = await rows(db, "SELECT lead_id, count(*) FROM outbox WHERE kind = 'card' AND lead_id IS NOT NULL"
                                      " AND state = 'sent' GROUP BY lead_id")
            assert len(per_lead) >= N  # every lead got its card (friend cards may carry a lead too)
            # Work was shared: more than one process handled requests.
            logs = [s.log_path.read_text(errors="replace") for s in servers]
            assert sum(1 for text in logs if "intake.lead" in text) >= min(2, PROCESSES)
        finally:
            for s in servers:
                s.stop()
            await sandbox.stop()
