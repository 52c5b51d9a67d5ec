"""Callbacks are answered in time while another connection holds SQLite's write lock (issue 18 #8),
and what was answered is still never lost: the event goes to the inbox's spill journal
(store/spill.py), fsync'ed before the answer, and becomes an inbox row once the lock is gone,
in this process or, after a kill -9, in the next one."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from sandbox.dingtalk import DingTalkSandbox
from sandbox.wecom import SimulatedWeCom
from tests.conftest import PG_URL, make_settings
from tests.faults.serve import WECOM, LeadbotProcess, rows

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="SQLite's database-wide write lock")

DINGTALK_DEADLINE = 1.5  # event subscription (reference/dingtalk.md §3); card taps get 2 s
WECOM_DEADLINE = 5.0


def _xml(msg_id: str, ts: int, content: str = "hi") -> str:
    return (f"<xml><ToUserName>{WECOM['corp_id']}</ToUserName><FromUserName>u1</FromUserName>"
            f"<CreateTime>{ts}</CreateTime><MsgType>text</MsgType><Content>{content}</Content>"
            f"<MsgId>{msg_id}</MsgId></xml>")


class WriteLock:
    """Another connection (another process, as far as SQLite can tell) holding the write lock."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=0)

    def __enter__(self) -> "WriteLock":
        self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


async def timed(coro: Any) -> tuple[float, Any]:
    started = time.monotonic()
    result = await coro
    return time.monotonic() - started, result


async def test_callbacks_are_answered_in_time_under_a_held_write_lock_and_land_later(
        aiohttp_client, engine, clock) -> None:
    from bot.app import create_app
    from bot.context import CTX

    wecom = SimulatedWeCom(clock=clock, **WECOM)
    dingtalk = DingTalkSandbox(clock=clock)
    settings = make_settings(wecom=dict(WECOM, api_base="http://127.0.0.1:9"),
                             dingtalk=dingtalk.dingtalk_settings(api_base="http://127.0.0.1:9",
                                                                 oapi_base="http://127.0.0.1:9"))
    cli = await aiohttp_client(create_app(settings, clock=clock, engine=engine, start_workers=False))
    wecom.callback_url = str(cli.make_url("/callbacks/wecom"))
    dingtalk.leadbot_url = str(cli.make_url("")).rstrip("/")
    ctx = cli.app[CTX]
    handled: list[Any] = []

    async def record(event: Any, _: Any) -> None:
        handled.append(event)

    ctx.services.processor.dispatch = record

    async def inbox_keys() -> list[str]:
        # A connection of its own: the app's one pooled connection is still waiting for the lock.
        with sqlite3.connect(engine.url.database) as conn:
            return [r[0] for r in conn.execute("SELECT dedupe_key FROM inbox ORDER BY id")]

    ts = int(clock.now().timestamp())
    with WriteLock(engine.url.database):
        took, first = await timed(wecom.post_callback(_xml("9200001", ts)))
        assert first.status == 200 and took < WECOM_DEADLINE / 2, took
        took, retry = await timed(wecom.resend(first))  # WeCom resending it: still one event
        assert retry.status == 200 and took < WECOM_DEADLINE / 2
        took, event = await timed(dingtalk.send_event("user_add_org", {"UserId": ["u9"]}, event_id="lock-1"))
        assert event.status == 200 and event.reply == "success" and took < DINGTALK_DEADLINE, took
        took, robot = await timed(dingtalk.send_robot_text("u1", "状态", msg_id="lock-robot-1"))
        assert robot.status == 200 and took < DINGTALK_DEADLINE, took
        took, tap = await timed(dingtalk.tap_card("card-x", "u1", key="claim:TOKEN"))
        assert tap.status == 200 and took < DINGTALK_DEADLINE, took
        # Answered before any row could be written: every one of them is on disk in the journal.
        assert await inbox_keys() == []
        spilled = "".join(p.read_text() for p in ctx.inbox.spill.directory.iterdir())
        for needle in ("9200001", "lock-1", "lock-robot-1", "claim:TOKEN"):
            assert needle in spilled, needle

    await ctx.services.processor.drain()  # the lock is gone: the journal becomes rows, handled once
    keys = await inbox_keys()
    assert len(keys) == len(set(keys)) == 4, keys
    assert len(handled) == 4
    assert not ctx.inbox.spill.pending()
    await wecom.stop()
    await dingtalk.stop()


async def test_a_replayed_robot_sign_is_still_refused_when_checked_late(aiohttp_client, engine, clock) -> None:
    """The robot's (timestamp, sign) check is a write too: under the lock it is made when the
    journal is replayed, and a second body under the same pair is dropped then."""
    from bot.app import create_app
    from bot.context import CTX

    dingtalk = DingTalkSandbox(clock=clock)
    settings = make_settings(dingtalk=dingtalk.dingtalk_settings(api_base="http://127.0.0.1:9",
                                                                 oapi_base="http://127.0.0.1:9"))
    cli = await aiohttp_client(create_app(settings, clock=clock, engine=engine, start_workers=False))
    dingtalk.leadbot_url = str(cli.make_url("")).rstrip("/")
    ctx = cli.app[CTX]
    handled: list[Any] = []

    async def record(event: Any, _: Any) -> None:
        handled.append(event)

    ctx.services.processor.dispatch = record
    body = dingtalk.robot_body("u1", "我的线索")
    ts = str(int(clock.now().timestamp() * 1000))
    with WriteLock(engine.url.database):
        assert (await dingtalk.post_robot(body, timestamp=ts)).status == 200
        forged = {**body, "msgId": "forged-1", "text": {"content": "查 13800000000"}}
        assert (await dingtalk.post_robot(forged, timestamp=ts)).status == 200  # cannot tell yet
    await ctx.services.processor.drain()
    assert len(handled) == 1 and "我的线索" in repr(handled[0]) and "13800000000" not in repr(handled), handled


async def test_acknowledged_under_the_lock_then_kill_9_the_next_process_handles_it(tmp_path: Path) -> None:
    """A real `leadbot serve` answers WeCom under a held lock, is killed -9 before the lock goes
    (its own row write never happens), and the next process replays the dead one's journal."""
    db_url = f"sqlite+aiosqlite:///{tmp_path}/leadbot.db"
    wecom = SimulatedWeCom(**WECOM)
    await wecom.start()
    first = LeadbotProcess(tmp_path, db_url, api_base=wecom.base_url, name="first")
    await first.start()
    try:
        wecom.callback_url = first.base + "/callbacks/wecom"
        ts = int(time.time())
        with WriteLock(f"{tmp_path}/leadbot.db"):
            took, answer = await timed(wecom.post_callback(_xml("9300001", ts, "帮助")))
            assert answer.status == 200 and took < WECOM_DEADLINE / 2, took
            first.kill()
        assert await rows(db_url, "SELECT dedupe_key FROM inbox") == []
        second = LeadbotProcess(tmp_path, db_url, api_base=wecom.base_url, name="second")
        await second.start()
        try:
            for _ in range(100):
                done = await rows(db_url, "SELECT state FROM inbox")
                if done == [("done",)]:
                    break
                await asyncio.sleep(0.1)
            assert done == [("done",)], done
            assert not list((tmp_path / "leadbot.db.spill").glob("*.jsonl"))
        finally:
            second.stop()
    finally:
        first.kill()
        await wecom.stop()


def test_the_journal_takes_its_own_and_dead_processes_files_never_a_live_neighbours(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    from datetime import datetime, timezone

    from store.leases import process_identity
    from store.spill import SpillJournal

    gone = subprocess.Popen(["true"])
    gone.wait()
    dead_pid = gone.pid
    host = socket.gethostname()
    row = {"platform": "wecom", "dedupe_key": "k1", "kind": "msg:text", "payload": {"Content": "你好"},
           "state": "pending", "attempts": 0, "error": "", "received_at": datetime(2026, 12, 5, tzinfo=timezone.utc)}
    me = SpillJournal(tmp_path, process_identity())
    live = SpillJournal(tmp_path, f"{host}:{os.getppid()}:aaaa1111")
    dead = SpillJournal(tmp_path, f"{host}:{dead_pid}:bbbb2222")
    for journal, key in ((me, "mine"), (live, "live"), (dead, "dead")):
        journal.append({**row, "dedupe_key": key})
    with open(dead.active, "ab") as f:
        f.write(b'{"platform": "wecom", "dedupe_')  # a crash mid-line: never fsync'ed, never acknowledged
    taken = me.take()
    keys = sorted(r["dedupe_key"] for path in taken for r in me.read(path))
    assert keys == ["dead", "mine"]
    assert me.read(taken[0])[0]["received_at"] == row["received_at"]
    assert live.active.exists()  # a live neighbour's file is left to it
    me.append({**row, "dedupe_key": "after"})  # an append after the take starts a new file
    assert [r["dedupe_key"] for r in me.read(me.active)] == ["after"]



async def test_a_slow_write_without_a_lock_is_waited_for_not_spilled(engine, clock) -> None:
    """Only a held write lock sends an event to the journal: a write that is merely slow (a busy
    machine) is awaited, so nothing is stored twice for no reason."""
    from sqlalchemy import event

    from store.inbox import DEFERRED, Inbox

    # A statement listener takes the instrumented path, where `linger` holds each commit 0.6 s.
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *args: None)
    inbox = Inbox(engine, clock, linger=0.6)
    got = await inbox.put("wecom", "slow-1", "msg:text", {"Content": "x"}, within=0.1)
    assert isinstance(got, int) and got > 0 and not inbox.spill.pending()
    with WriteLock(engine.url.database):
        assert await inbox.put("wecom", "slow-2", "msg:text", {"Content": "y"}, within=0.1) == DEFERRED
    assert inbox.spill.pending()
    await inbox.replay_spill()  # stores it, or finds it stored by the write that carried on
    assert not inbox.spill.pending()
    with sqlite3.connect(engine.url.database) as conn:
        assert conn.execute("SELECT dedupe_key FROM inbox ORDER BY id").fetchall() == [("slow-1",), ("slow-2",)]
    inbox.close()
