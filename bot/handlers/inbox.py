"""Processing from the inbox: raw payload -> neutral event (by the platform's parser) -> handler.

Routes store and acknowledge; this worker does the work. Rows left pending by a crash are
picked up at start and by a periodic sweep, so an acknowledged event is never lost.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

from store.leases import Heartbeat
from leadbot.tasks import cancel_and_wait

if TYPE_CHECKING:
    from bot.context import AppContext
    from store.inbox import InboxEntry

Parser = Callable[[Mapping[str, Any]], Any]
Dispatch = Callable[[Any, "AppContext"], Awaitable[Any]]


class InboxProcessor:
    SWEEP_SECONDS = 5.0
    # Rows claimed per statement. One: a card tap's row is claimed by the route answering it
    # synchronously (process()); a batch would take newer taps away from it more often (the
    # background handler's card update has nowhere to go), and claimed rows wait under the lease.
    CLAIM_BATCH = 1
    REQUEUE_SECONDS = 30.0  # how often rows of crashed neighbours (or expired leases) are taken back
    LATE_ANSWER_STOP_SECONDS = 10.0  # what stop() waits for late answers before cancelling them

    def __init__(self, ctx: "AppContext") -> None:
        self.ctx = ctx
        self.parsers: dict[str, Parser] = {}
        self.dispatch: Dispatch | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._requeued_at = 0.0
        # Rows this process is working on: the heartbeat renews their leases while they run, so
        # another process takes one back only when this one stopped renewing (dead or hung).
        self._held: set[int] = set()
        self._heartbeat: Heartbeat | None = None
        # Taps whose route stopped waiting (the platform's answer window closed): each redraws
        # its card once its handler is done; drain() and stop() wait for them.
        self._late: set[asyncio.Task[None]] = set()

    def register_parser(self, platform: str, parser: Parser) -> None:
        self.parsers[platform] = parser

    def notify(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        await self.ctx.inbox.requeue_stale()
        self._requeued_at = time.monotonic()
        self._heartbeat = Heartbeat(self._renew, self.ctx.inbox.LEASE.total_seconds() / 3, log=self.ctx.log,
                                    name="inbox")
        await self._heartbeat.__aenter__()
        self._task = asyncio.create_task(self._run(), name="inbox-processor")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        # A late answer is a card update going into the outbox: let it be written (the handler
        # is one tap's database work) rather than leave the tapped card as it was.
        await self.late_answers_done(timeout=self.LATE_ANSWER_STOP_SECONDS)
        if self._heartbeat is not None:
            await self._heartbeat.__aexit__(None, None, None)
            self._heartbeat = None

    async def _renew(self) -> bool:
        held = set(self._held)
        if held:
            lost = held - await self.ctx.inbox.renew(sorted(held)) - (held - self._held)  # not finished meanwhile
            if lost:
                self.ctx.log.warning("inbox.lease_lost", rows=sorted(lost)[:20])
        return True

    async def _run(self) -> None:
        while True:
            try:
                if time.monotonic() - self._requeued_at >= self.REQUEUE_SECONDS:
                    self._requeued_at = time.monotonic()
                    await self.ctx.inbox.requeue_stale()
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.ctx.log.exception("inbox.drain_failed")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.SWEEP_SECONDS)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def replay_spill(self) -> None:
        """Spilled callbacks (acknowledged while SQLite's write lock was held elsewhere: see
        store/spill.py) become inbox rows; waits for the lock if it is still held."""
        try:
            stored, refused = await self.ctx.inbox.replay_spill()
        except Exception as e:  # still locked past the driver's wait, or the store is away: next time
            self.ctx.log.warning("inbox.spill_replay_failed", error=f"{type(e).__name__}: {e}"[:200])
            return
        if stored or refused:
            self.ctx.log.info("inbox.spill_replayed", stored=stored, refused=refused)

    async def drain(self) -> int:
        """Processes every pending row (spilled ones first made rows), and waits for the late
        answers in flight; returns how many rows were handled."""
        async with self._lock:
            handled = await self._drain_pending()
        await self.late_answers_done()
        return handled

    def answer_late(self, handling: "asyncio.Future[Any]") -> None:
        """A route stopped waiting for a tap's handler (WeCom's 5 s, DingTalk's 2 s): once the
        handler is done its tapped card is redrawn the way any late answer's is."""
        task = asyncio.ensure_future(self._answer_when_done(handling))
        self._late.add(task)
        task.add_done_callback(self._late.discard)

    async def _answer_when_done(self, handling: "asyncio.Future[Any]") -> None:
        try:
            result = await handling
        except asyncio.CancelledError:
            raise
        except Exception:
            self.ctx.log.exception("inbox.late_handler_failed")
            return
        await self._answer_late(result)

    async def late_answers_done(self, timeout: float | None = None) -> None:
        """Waits for the late answers in flight (at most `timeout`, then cancels the rest)."""
        if not self._late:
            return
        late = list(self._late)
        _, pending = await asyncio.wait(late, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            self.ctx.log.warning("inbox.late_answers_cancelled", count=len(pending))

    async def _drain_pending(self) -> int:
        handled = 0
        await self.replay_spill()
        while True:
            # The oldest pending row(s) in one statement (a read and a claim per row before).
            batch = await self.ctx.inbox.claim_pending(limit=self.CLAIM_BATCH)
            if not batch:
                return handled
            for n, entry in enumerate(batch):
                try:
                    result = await self._handle(entry)
                    if result is not None:
                        handled += 1
                        await self._answer_late(result)
                except asyncio.CancelledError:
                    await self.ctx.inbox.release([e.id for e in batch[n + 1:]])
                    raise

    async def _answer_late(self, result: Any) -> None:
        """A card tap handled here had no synchronous answer from its route (it was deferred
        while SQLite's write lock was held elsewhere, left pending by a crash, or this sweep
        claimed it before the route could): its card is redrawn the way a late answer's is
        (TapAnswer.after_deadline: WeCom with the tap's own code, DingTalk by the update API)."""
        hook = getattr(result, "after_deadline", None)
        if not callable(hook):
            return
        try:
            await hook()
        except Exception:
            self.ctx.log.exception("inbox.late_answer_failed")

    async def process(self, entry_id: int) -> Any:
        """Claims and handles one row; returns the handler's result (None if another worker won)."""
        entry = await self.ctx.inbox.claim(entry_id)
        if entry is None:
            return None
        return await self._handle(entry)

    async def _handle(self, entry: "InboxEntry") -> Any:
        """Handles a row this process has claimed; returns the handler's result (None if it failed)."""
        inbox = self.ctx.inbox
        entry_id = entry.id
        parser = self.parsers.get(entry.platform)
        self._held.add(entry_id)
        try:
            event = parser(entry.payload) if parser else None
            result: Any = True
            if event is not None and self.dispatch is not None:
                result = await self.dispatch(event, self.ctx)
            if not await inbox.done(entry_id):
                # Our lease ran out unrenewed (this process was stalled) and another process took
                # the row back: it finishes the row, not us (handlers are idempotent on the row).
                self.ctx.log.warning("inbox.lease_lost_before_done", entry_id=entry_id, kind=entry.kind)
            self.ctx.metrics.events.labels(entry.kind or entry.platform, "ok").inc()
            return True if result is None else result
        except asyncio.CancelledError:
            await inbox.failed(entry_id, "cancelled")
            raise
        except Exception as e:
            self.ctx.log.exception("inbox.handler_failed", entry_id=entry_id, kind=entry.kind)
            self.ctx.metrics.events.labels(entry.kind or entry.platform, "error").inc()
            await inbox.failed(entry_id, f"{type(e).__name__}: {e}")
            return None
        finally:
            self._held.discard(entry_id)
