"""Inbox leases: a process that starts (or sweeps) takes back only rows whose holder is gone, so
with several processes on one database a restart never re-runs a live neighbour's work, and a
crashed process's rows are picked up at once on the same host, or when their lease runs out."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import select

from crm_bridge.inbox import Inbox
from crm_bridge.models import InboxItem

HOST = socket.gethostname()


async def _state(engine, row_id: int) -> tuple[str, str]:
    async with engine.connect() as conn:
        return tuple((await conn.execute(select(InboxItem.state, InboxItem.lease_owner)
                                          .where(InboxItem.id == row_id))).one())


async def _claimed_by(engine, clock, owner: str, key: str) -> int:
    holder = Inbox(engine, clock, owner=owner)
    row_id = await holder.put("wecom", key, "text", {"k": key})
    entry = await holder.claim(row_id)
    assert entry is not None and entry.id == row_id and entry.payload == {"k": key}
    return row_id


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_a_live_neighbours_rows_stay_with_it_until_the_lease_runs_out(engine, clock) -> None:
    row = await _claimed_by(engine, clock, "other-host:4242", "live")
    me = Inbox(engine, clock)
    assert await me.requeue_stale(at_start=True) == 0
    assert await _state(engine, row) == ("processing", "other-host:4242")
    clock.advance(Inbox.LEASE + timedelta(seconds=1))
    assert await me.requeue_stale() == 1
    assert await _state(engine, row) == ("pending", "")
    assert (await me.claim(row)) is not None  # and it can be taken again


async def test_a_dead_process_on_this_host_is_noticed_at_once(engine, clock) -> None:
    dead = await _claimed_by(engine, clock, f"{HOST}:{_dead_pid()}", "dead")
    alive = await _claimed_by(engine, clock, f"{HOST}:{os.getppid()}", "alive")
    assert await Inbox(engine, clock).requeue_stale() == 1
    assert (await _state(engine, dead))[0] == "pending"
    assert (await _state(engine, alive))[0] == "processing"


async def test_own_rows_are_a_predecessors_at_start_and_work_in_flight_later(engine, clock) -> None:
    mine = await _claimed_by(engine, clock, f"{HOST}:{os.getpid()}", "mine")
    me = Inbox(engine, clock)
    assert await me.requeue_stale() == 0  # the periodic sweep leaves our own work alone
    assert await me.requeue_stale(at_start=True) == 1  # at start nothing can be in flight yet
    assert (await _state(engine, mine))[0] == "pending"


async def test_done_and_failed_release_the_lease(engine, clock) -> None:
    me = Inbox(engine, clock)
    a = await _claimed_by(engine, clock, me.owner, "a")
    b = await _claimed_by(engine, clock, me.owner, "b")
    await me.done(a)
    await me.failed(b, "boom")
    assert await _state(engine, a) == ("done", "")
    assert await _state(engine, b) == ("pending", "")
    clock.advance(timedelta(hours=1))
    assert await me.requeue_stale() == 0
