"""kill -9 of `leadbot serve` in the middle of a burst of leads and callbacks, restart, resend what
was not acknowledged (as sources and platforms do): nothing acknowledged is lost, nothing is
stored twice, and the events left unprocessed by the crash are processed after the restart. And
kill -9 with a lead card in flight to WeCom: after the restart no rep sees a card twice."""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest

from store.db import create_engine
from store.migrate import upgrade
from crm.sql_store import SqlCRMStore
from notifications.sender import dedupe_id
from sandbox.wecom import SimulatedWeCom
from tests.conftest import AUTH
from tests.faults.serve import WECOM, CrashWeCom, LeadbotProcess, fresh_database, rows, scalar

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


async def test_kill_9_with_a_card_in_flight_no_rep_sees_a_card_twice(tmp_path: Path) -> None:
    """Leads are routed to reps and their cards delivered to the simulated WeCom; kill -9 lands
    the moment WeCom has accepted a card and before leadbot hears the answer (the card is on the
    rep's phone, its outbox row still leased), with more cards pending or leased behind it. After
    the restart every lead's card reaches its rep exactly once: the row in flight is delivered
    again under the same task_id (it derives from the row's key), WeCom refuses the repeat, and
    leadbot records that refusal as the delivery it is."""
    reps = max(10, N // 10)  # about 10 cards a rep, under WeCom's 30 messages a minute
    leads = list(range(N))
    kill_at = N // 3  # the card whose acceptance leadbot never hears of
    sandbox = CrashWeCom(**WECOM)
    await sandbox.start()
    try:
        async with fresh_database(tmp_path) as db:
            engine = create_engine(db)
            await upgrade(engine)
            await SqlCRMStore(engine).import_reps(
                [{"id": f"r{i}", "name": f"销售{i}", "wecom_userid": f"user{i}", "team": "华东", "role": "rep",
                  "weight": "1", "delivery": "card"} for i in range(reps)])  # WeCom-app reps: no text copies (W3)
            await engine.dispose()
            # Working hours all day (cards wait out quiet hours otherwise, and the test runs on the
            # real clock); SLA steps far away, so the only cards are the leads' own.
            config = {"calendar": {"working_hours": "00:00-23:59", "working_days": [1, 2, 3, 4, 5, 6, 7],
                                   "holidays": []},
                      "sla": {"first_touch_remind": "1h", "first_touch_escalate": "2h", "first_touch_reassign": "3h",
                              "pool_return": "4h"},
                      # A short lease: the rows leased at the kill come back in seconds, not a minute.
                      "delivery": {"lease_seconds": 6, "send_timeout_seconds": 3}}
            server = await LeadbotProcess(tmp_path, db, api_base=sandbox.base_url, name="first", extra=config).start()
            in_flight: list[str] = []

            def kill_on_card(task_id: str) -> None:
                if not in_flight and len(sandbox.task_ids) >= kill_at:
                    in_flight.append(task_id)
                    server.kill()

            sandbox.on_card = kill_on_card
            try:
                await _send_all(server.base, leads, [], kill_after=None, server=server)
                for _ in range(300):  # the cards may still be going out when the last lead is in
                    if in_flight:
                        break
                    await asyncio.sleep(0.2)
            finally:
                sandbox.on_card = None
                server.kill()
            assert in_flight, f"the kill never came: fewer than {kill_at} cards accepted"
            assert server.proc.returncode == -9

            # At the kill: WeCom has the card (on the rep's phone), and leadbot's row for it is still
            # leased (`sending`): the window between "accepted" and "marked sent".
            # Platform ids carry the database's deployment id (conformance W6).
            ns = (await rows(db, "SELECT value FROM kv WHERE key = 'deployment_id'"))[0][0]
            cards = {dedupe_id(key, ns): (key, state) for key, state in
                     await rows(db, "SELECT idempotency_key, state FROM outbox WHERE kind = 'card'")}
            assert cards[in_flight[0]][1] == "sending", cards[in_flight[0]]
            assert any(m["task_id"] == in_flight[0] for inbox in sandbox.inbox.values() for m in inbox)

            server = await LeadbotProcess(tmp_path, db, api_base=sandbox.base_url, name="second",
                                          extra=config).start()
            try:
                acked, _ = await _send_all(server.base, leads, [], kill_after=None, server=server)
                assert acked == set(leads)
                # Rows leased at the kill come back when their lease ([delivery] lease_seconds) runs out.
                for _ in range(600):
                    left = (await rows(db, "SELECT (SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')),"
                                           " (SELECT count(*) FROM inbox WHERE state IN ('pending', 'processing')),"
                                           " (SELECT count(*) FROM leads l WHERE NOT EXISTS (SELECT 1 FROM outbox o"
                                           "  WHERE o.lead_id = l.id AND o.kind = 'card' AND o.state = 'sent'))"))[0]
                    if not any(left):
                        break
                    await asyncio.sleep(0.25)
                assert not any(left), f"still to do (outbox, inbox, leads without a card): {left}"
            finally:
                server.stop()

            # One card per lead, to its owner, and every outbox row is such a card and ended `sent`:
            # nothing pending, dead-lettered, replaced by a text copy, rolled into a digest or
            # alerted about.
            owners = dict(await rows(db, "SELECT l.id, r.wecom_userid FROM leads l JOIN reps r ON r.id = l.owner_id"))
            assert len(owners) == await scalar(db, "SELECT count(*) FROM leads") == N
            card_rows = await rows(db, "SELECT idempotency_key, lead_id, recipient, state, attempts, result"
                                       " FROM outbox WHERE kind = 'card'")
            assert sorted(r[1] for r in card_rows) == sorted(owners), "a lead without a card, or with two"
            assert {r[3] for r in card_rows} == {"sent"}, Counter(r[3] for r in card_rows)
            assert all(owners[lead] == recipient for _, lead, recipient, *_ in card_rows)
            assert await scalar(db, "SELECT count(*) FROM outbox WHERE state <> 'sent' OR kind <> 'card'") == 0
            lead_of = {dedupe_id(key, ns): lead for key, lead, *_ in card_rows}

            # WeCom accepted each card exactly once, and each rep's phone shows one card per lead.
            sends = [c for c in sandbox.calls_to("message/send") if c.body.get("msgtype") == "template_card"]
            accepted = Counter(c.body["template_card"]["task_id"] for c in sends if c.response.get("errcode") == 0)
            assert set(accepted) == set(lead_of), set(accepted) ^ set(lead_of)
            seen = Counter((user, lead_of.get(m["task_id"])) for user, inbox in sandbox.inbox.items()
                           for m in inbox if m["msgtype"] == "template_card")
            assert set(seen) == {(user, lead) for lead, user in owners.items()}, set(seen) ^ {
                (user, lead) for lead, user in owners.items()}
            assert max(seen.values()) == 1, seen.most_common(3)
            assert sandbox.dropped == []

            # The card in flight at the kill: sent again after the restart under the same task_id,
            # answered errcode 0 and not shown again by WeCom (a repeated task_id delivers
            # nothing), and recorded as delivered (not dead, not a text copy).
            again = [c for c in sends if c.body["template_card"]["task_id"] == in_flight[0]]
            assert [c.response.get("errcode") for c in again] == [0, 0], again
            assert sandbox.repeated_task_ids == [in_flight[0]]
            row = next(r for r in card_rows if dedupe_id(r[0], ns) == in_flight[0])
            assert row[4] >= 2 and row[3] == "sent", row
    finally:
        await sandbox.stop()
