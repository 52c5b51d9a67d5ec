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

from store.inbox import Inbox
from store.models import InboxItem

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
    row = await _claimed_by(engine, clock, "other-host:4242:9f3a11c2", "live")
    me = Inbox(engine, clock)
    assert await me.requeue_stale() == 0
    assert await _state(engine, row) == ("processing", "other-host:4242:9f3a11c2")
    clock.advance(Inbox.LEASE + timedelta(seconds=1))
    assert await me.requeue_stale() == 1
    assert await _state(engine, row) == ("pending", "")
    assert (await me.claim(row)) is not None  # and it can be taken again


async def test_a_renewed_lease_is_never_taken_back_and_a_lost_one_is_never_finished(engine, clock) -> None:
    """A holder on another host that keeps renewing (its heartbeat) keeps its row however long it
    works; once it stops renewing, the row is taken back and the former holder finishes nothing:
    neither done nor failed lands, the new holder's outcome stands."""
    slow = Inbox(engine, clock, owner="host-b:77:0badc0de")
    row = await _claimed_by(engine, clock, slow.owner, "slow")
    me = Inbox(engine, clock)
    for _ in range(5):  # 5 x 100 s of work, renewed each time: 2.5 leases in all
        clock.advance(timedelta(seconds=100))
        assert await slow.renew([row]) == {row}
        assert await me.requeue_stale() == 0
    assert await _state(engine, row) == ("processing", slow.owner)
    clock.advance(Inbox.LEASE + timedelta(seconds=1))  # host-b hung: no renewal
    assert await me.requeue_stale() == 1
    taken = await me.claim(row)
    assert taken is not None and taken.attempts == 2
    assert await slow.renew([row]) == set()  # its heartbeat learns it lost the row
    assert await slow.done(row) is False and await slow.failed(row, "late") is False
    assert await _state(engine, row) == ("processing", me.owner)
    assert await me.done(row) is True
    assert await _state(engine, row) == ("done", "")


async def test_a_dead_process_on_this_host_is_noticed_at_once(engine, clock) -> None:
    dead = await _claimed_by(engine, clock, f"{HOST}:{_dead_pid()}", "dead")
    alive = await _claimed_by(engine, clock, f"{HOST}:{os.getppid()}", "alive")
    assert await Inbox(engine, clock).requeue_stale() == 1
    assert (await _state(engine, dead))[0] == "pending"
    assert (await _state(engine, alive))[0] == "processing"


async def test_own_rows_stay_and_a_predecessor_with_our_pid_is_gone(engine, clock) -> None:
    me = Inbox(engine, clock)
    mine = await _claimed_by(engine, clock, me.owner, "mine")
    before = await _claimed_by(engine, clock, f"{HOST}:{os.getpid()}:00000000", "before")  # pid reused
    assert await me.requeue_stale() == 1  # our own work in flight stays with us
    assert (await _state(engine, mine))[0] == "processing"
    assert (await _state(engine, before))[0] == "pending"


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
