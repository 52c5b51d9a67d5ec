"""Scale-out: several `leadbot serve` processes on one PostgreSQL database behind a round-robin of
leads and callbacks, with retries that land on another process. Every lead is stored and
assigned once, every friend event handled once, every card reaches the simulated WeCom once, and
every SLA timer that comes due on the real clock (each lead's first-touch reminder, a few seconds
after its assignment, while the burst is still running) is claimed and fired exactly once, by
whichever process sweeps it first.

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
from sqlalchemy import text

from store.db import create_engine
from store.migrate import upgrade
from crm.sql_store import SqlCRMStore
from notifications.sender import dedupe_id
from sandbox.wecom import SimulatedWeCom
from tests.conftest import AUTH, PG_URL
from tests.faults.serve import WECOM, LeadbotProcess, fresh_database, rows, scalar

N = int(os.environ.get("LEADBOT_SCALE_N", "150"))
PROCESSES = int(os.environ.get("LEADBOT_SCALE_PROCESSES", "2"))
REMIND_AFTER = 3  # seconds: each lead's reminder comes due while the burst is still running

# Every update of a timer row, with its state before and after: the proof that each timer was
# claimed (pending -> firing) once, not just that it ended `fired`. A second claim of a row already
# `firing` would show as firing -> firing.
TIMER_AUDIT = [
    "CREATE TABLE timer_audit (id bigserial PRIMARY KEY, timer_id bigint, old_state text, new_state text)",
    "CREATE FUNCTION timer_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " INSERT INTO timer_audit (timer_id, old_state, new_state) VALUES (NEW.id, OLD.state, NEW.state);"
    " RETURN NEW; END $$",
    "CREATE TRIGGER timer_audit AFTER UPDATE ON timers FOR EACH ROW EXECUTE FUNCTION timer_audit()",
]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not PG_URL, reason="several processes share PostgreSQL (LEADBOT_TEST_DATABASE_URL)")]


async def test_processes_share_one_database_exactly_once(tmp_path: Path) -> None:
    # Keeps every rep under WeCom's 30 messages a minute: about 8 leads each, so 8 lead cards and
    # 8 reminders (friend events add customers, not messages).
    reps = max(20, N // 8)
    sandbox = SimulatedWeCom(**WECOM)
    await sandbox.start()
    servers: list[LeadbotProcess] = []
    async with fresh_database(tmp_path) as db:
        try:
            engine = create_engine(db)
            await upgrade(engine)  # once, before the processes start (each would upgrade too)
            await SqlCRMStore(engine).import_reps(
                [{"id": f"r{i}", "name": f"销售{i}", "wecom_userid": f"user{i}", "team": "华东", "role": "rep",
                  # Reps known to use the WeCom app: a card each, no text copy (W3), so the count
                  # of messages per rep stays under WeCom's 30 a minute.
                  "weight": "1", "delivery": "card"} for i in range(reps)])
            async with engine.begin() as conn:
                for statement in TIMER_AUDIT:
                    await conn.execute(text(statement))
            await engine.dispose()
            for i in range(PROCESSES):
                # Working hours all day, every day: the test runs on the real clock, and cards wait
                # out quiet hours otherwise. The first-touch reminder comes due REMIND_AFTER seconds
                # (wall clock) after the assignment; the later ladder steps are hours away, so they
                # must not fire at all. The processes sweep the timers ten times as often as the
                # default, each at an interval of its own: their claims of the same due rows overlap
                # often (a claim that does not lock its rows is caught most runs), and no fixed phase
                # between their sweeps lets one of them find every due timer first.
                config = {"calendar": {"working_hours": "00:00-23:59", "working_days": [1, 2, 3, 4, 5, 6, 7],
                                       "holidays": []},
                          "sla": {"first_touch_remind": f"{REMIND_AFTER}s", "first_touch_escalate": "1h",
                                  "first_touch_reassign": "2h", "pool_return": "3h", "working_time": False,
                                  "sweep_interval_seconds": round(0.1 + 0.03 * i, 2)}}
                servers.append(await LeadbotProcess(tmp_path, db, api_base=sandbox.base_url, name=f"p{i}",
                                                    extra=config).start())

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

            # Processing, the reminders and delivery finish, shared by the processes (bounded wait):
            # nothing waiting in the inbox or outbox, and no timer due, or claimed, that has not fired.
            for _ in range(300):
                busy = (await rows(db, "SELECT (SELECT count(*) FROM inbox WHERE state IN ('pending', 'processing')),"
                                       " (SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')),"
                                       " (SELECT count(*) FROM timers WHERE state = 'firing'"
                                       "  OR (state = 'pending' AND due_at <= now())),"
                                       " (SELECT count(*) FROM leads l WHERE source_channel = 'scale' AND NOT EXISTS"
                                       "  (SELECT 1 FROM timers t WHERE t.lead_id = l.id AND t.kind = 'ladder.remind'"
                                       "   AND t.state = 'fired'))"))[0]
                if not any(busy):
                    break
                await asyncio.sleep(0.5)
            assert not any(busy), f"still to do (inbox, outbox, due or claimed timers, leads not reminded): {busy}"
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
            # Every timer that came due fired exactly once. Each routed lead has one first-touch
            # reminder, and it fired (a friend's lead is its rep's from the start: no ladder);
            # nothing is left claimed (`firing`), failed or retried; the later ladder steps, hours
            # away, are all still pending.
            leads = dict(await rows(db, "SELECT id, owner_id FROM leads WHERE source_channel = 'scale'"))
            reminders = await rows(db, "SELECT id, key, lead_id, state, payload FROM timers"
                                       " WHERE kind = 'ladder.remind'")
            per_lead_reminders = Counter(r[2] for r in reminders)
            assert set(per_lead_reminders) == set(leads) and max(per_lead_reminders.values()) == 1, \
                per_lead_reminders.most_common(3)
            assert {r[3] for r in reminders} == {"fired"}, Counter(r[3] for r in reminders)
            assert [r[1] for r in reminders if "_attempts" in r[4]] == []  # no action failed and was retried
            states = dict(await rows(db, "SELECT state, count(*) FROM timers GROUP BY state"))
            assert "firing" not in states and "failed" not in states, states
            later = await rows(db, "SELECT kind, state, count(*), min(due_at) > now() FROM timers"
                                   " WHERE kind IN ('ladder.escalate', 'ladder.reassign', 'ladder.pool_return')"
                                   " GROUP BY kind, state")
            assert sorted((k, s_, n, ahead) for k, s_, n, ahead in later) == [
                ("ladder.escalate", "pending", len(leads), True), ("ladder.pool_return", "pending", len(leads), True),
                ("ladder.reassign", "pending", len(leads), True)], later
            # Claimed once, not just ending `fired`: every fired timer went pending -> firing -> fired
            # and was updated at no other time (no second claim, no claim handed back or dropped),
            # and no other timer was touched at all.
            transitions = await rows(db, "SELECT timer_id, old_state, new_state FROM timer_audit ORDER BY id")
            history: dict[int, list[tuple[str, str]]] = {}
            for timer_id, before, after in transitions:
                history.setdefault(timer_id, []).append((before, after))
            fired_ids = {r[0] for r in await rows(db, "SELECT id FROM timers WHERE state = 'fired'")}
            assert fired_ids and set(history) == fired_ids, set(history) ^ fired_ids
            odd = {t: h for t, h in history.items() if h != [("pending", "firing"), ("firing", "fired")]}
            assert odd == {}, list(odd.items())[:5]

            # Each fired reminder is one card to the lead's owner, its outbox key derived from the
            # timer's key, sent (not rolled into a digest), and accepted by WeCom exactly once; WeCom
            # dropped nothing over its per-member limit, so every accepted card was seen.
            owner_userid = dict(await rows(db, "SELECT id, wecom_userid FROM reps"))
            reminder_rows = await rows(db, "SELECT idempotency_key, lead_id, state FROM outbox"
                                           " WHERE idempotency_key LIKE 'ft:%:remind:dm:%'")
            expected_keys = {f"{key}:dm:{leads[lead_id]}" for _, key, lead_id, _, _ in reminders}
            assert {r[0] for r in reminder_rows} == expected_keys
            assert {r[2] for r in reminder_rows} == {"sent"}, Counter(r[2] for r in reminder_rows)
            # Platform ids carry the database's deployment id (conformance W6).
            ns = (await rows(db, "SELECT value FROM kv WHERE key = 'deployment_id'"))[0][0]
            task_of = {dedupe_id(key, ns): (lead_id, key) for key, lead_id, _ in reminder_rows}
            reminder_calls = [c for c in accepted if c.body["template_card"].get("task_id") in task_of]
            per_reminder = Counter(c.body["template_card"]["task_id"] for c in reminder_calls)
            assert set(per_reminder) == set(task_of) and max(per_reminder.values()) == 1, per_reminder.most_common(3)
            assert len(reminder_calls) == len(reminders) == len(leads)
            for c in reminder_calls:
                lead_id, _ = task_of[c.body["template_card"]["task_id"]]
                assert c.body["touser"] == owner_userid[leads[lead_id]], (c.body["touser"], lead_id)
            assert sandbox.dropped == [], sandbox.dropped[:3]
            # The sweeps were shared: the reminder card carries the public URL of the process whose
            # sweep fired the timer (its action built the card), and more than one process fired.
            fired_by = Counter(next(s.name for s in servers
                                    if c.body["template_card"]["card_action"]["url"].startswith(s.base + "/"))
                               for c in reminder_calls)
            assert len(fired_by) >= min(2, PROCESSES), fired_by

            # Work was shared: more than one process handled requests.
            logs = [s.log_path.read_text(errors="replace") for s in servers]
            assert sum(1 for text in logs if "intake.lead" in text) >= min(2, PROCESSES)
        finally:
            for s in servers:
                s.stop()
            await sandbox.stop()
