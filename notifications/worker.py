"""DeliveryWorker: takes due outbox rows, sends them through the injected Sender, records the
outcome. Nothing is lost (every row ends sent, rolled up into a digest, replaced by a fallback
row, or dead-lettered and alerted) and nothing is sent twice by the worker itself (leases are
fenced; the platform-side guard for the crash window is described in notifications/sender.py).

One tick:
1. lease due rows (urgent first); hold non-urgent ones back during quiet hours;
2. per recipient, reserve the burst in the platform budget shared by every process
   (store.send_budget: one reservation row per message, in the database): within budget
   every row goes out; beyond it, the process that won the recipient's last slots leases the
   rest of that recipient's backlog too and rolls the excess into ONE digest, so the platform
   never silently drops the overflow; rows no slot was left for wait for the next free one;
3. send: the delivery profile picks the form (card | text | both | auto), text carries the H5
   link; permanent failures fall back to text (auto switches the rep to both), then to the
   rep's other platform, then to dead-letter, which alerts the admins once per incident.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from leadbot.i18n import t
from store.kv import deployment_id
from store.leases import Heartbeat, process_identity
from store.outbox import CardRecord, NewOutboxItem, OutboxEntry, OutboxRepo, RepContact, digest_key
from store.send_budget import SendBudget, scope_for
from store.send_blocks import APP_WIDE, SendBlocks, recipient_ref
from leadbot.clock import Clock
from leadbot.logs import get_logger
from leadbot.settings import Settings
from leadbot.workcal import WorkCalendar
from notifications.digest import StormRenderer, make_storm_digest, make_text_digest, summary_of
from notifications.quiet_hours import HELD_REASON, hold_until
from notifications.sender import DeliveryResult, OutboundMessage, Sender, dedupe_id
from notifications.throttle import RecipientThrottle

LinkFor = Callable[[OutboxEntry, "RepContact | None"], "str | None | Awaitable[str | None]"]
TextFor = Callable[[OutboxEntry], str]

PLATFORM_OF = {"wecom": "wecom", "wecom_robot": "wecom", "dingtalk": "dingtalk", "dingtalk_robot": "dingtalk"}
OTHER_PLATFORM = {"wecom": "dingtalk", "dingtalk": "wecom"}
ROLLABLE_KINDS = ("card", "text", "robot")
# Card updates and remarks go through other APIs and do not count against message/send limits.
UNCOUNTED_KINDS = ("card_update", "remark")
# Added to every window: the platform's clock and ours may disagree a little (several hosts).
CLOCK_MARGIN_SECONDS = 0.5
# Escalations one recipient gets individually a minute; past that they become one storm digest
# (the budget's reservations count them across processes, under a scope of their own).
STORM_PER_MINUTE = 3
# Storm digests one recipient gets a minute: escalations arriving between two wait for the next
# (at most 10 s), so a storm that trickles in over seconds is a few digests, not one per tick.
STORM_DIGESTS_PER_MINUTE = 6
# A card sent this long after its row was written may show a lead that has changed meanwhile
# (a catch-up, a held or throttled row): it is checked against the lead once delivered. Rows
# sent at once (the usual case) cost nothing more.
LATE_CARD = timedelta(seconds=5)
TEXT_LIMIT_BYTES = 2048  # WeCom text content and DingTalk work notice msg are both capped at 2048 B


class DeliveryMetrics:
    """Registered on the app's registry (never the global one)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry()
        self.registry = r
        self.sent = Counter("leadbot_outbox_sent_total", "Outbox messages delivered, by channel and form",
                            ["channel", "form"], registry=r)
        self.failures = Counter("leadbot_outbox_failures_total", "Failed delivery attempts, by channel and error kind",
                                ["channel", "error_kind"], registry=r)
        self.rolled_up = Counter("leadbot_outbox_rolled_up_total", "Messages folded into a digest, by channel",
                                 ["channel"], registry=r)
        self.fallbacks = Counter("leadbot_outbox_fallbacks_total", "Messages replaced by a text copy or another platform",
                                 ["channel", "to"], registry=r)
        self.dead = Gauge("leadbot_outbox_dead", "Outbox messages in dead-letter", registry=r)
        self.pending = Gauge("leadbot_outbox_pending", "Outbox messages waiting to be delivered", registry=r)
        self.held = Gauge("leadbot_outbox_held", "Messages held for quiet hours (outside working hours)",
                          registry=r)
        self.held_age = Gauge("leadbot_outbox_held_oldest_seconds",
                              "Age of the oldest message held for quiet hours (0 when none)", registry=r)


def exponential_backoff(attempt: int, rng: Callable[[], float], *, base: float = 2.0, cap: float = 900.0) -> float:
    """base·2^(n-1), capped, with jitter in [50 %, 100 %] so a platform outage does not make every
    worker retry in lockstep."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return delay * (0.5 + 0.5 * rng())


def compose_text(body: str, link: str | None, lang: str = "zh", limit: int = TEXT_LIMIT_BYTES) -> str:
    """Plain text that reads well on a lock screen, the link last, and never truncated by the
    platform's byte cap in the middle of the link."""
    if link and link in body:
        link = None  # the body already carries it (bot.cards.render_text puts it near the top)
    tail = "\n" + t("delivery.open_link", lang, url=link) if link else ""
    room = limit - len(tail.encode("utf-8"))
    raw = body.encode("utf-8")
    if len(raw) > room:
        body = raw[:max(0, room - 3)].decode("utf-8", errors="ignore") + "…"
    return body + tail


class DeliveryWorker:
    def __init__(self, engine: Any, sender: Sender, clock: Clock, settings: Settings,
                 throttle: RecipientThrottle | None = None, *,
                 registry: CollectorRegistry | None = None,
                 render_storm: StormRenderer | None = None,
                 link_for: LinkFor | None = None,
                 text_for: TextFor | None = None,
                 rng: Callable[[], float] = random.random,
                 backoff: Callable[[int, Callable[[], float]], float] = exponential_backoff,
                 quiet_hours: bool = True,
                 batch_size: int = 100,
                 lookahead_limit: int = 5000,
                 lease_seconds: float = 60.0,
                 send_timeout: float = 20.0,
                 max_attempts: int = 8,
                 concurrency: int = 8,
                 poll_interval: float = 1.0,
                 gauge_interval: float = 10.0,
                 incident_ttl: timedelta = timedelta(hours=24),
                 owner: str | None = None,
                 after_late_card: Callable[[CardRecord], Awaitable[None]] | None = None,
                 log: Any = None) -> None:
        if send_timeout >= lease_seconds:
            raise ValueError("send_timeout must be shorter than the lease, or a slow send could be repeated")
        self.repo = OutboxRepo(engine, clock)
        self.sender = sender
        self.clock = clock
        self.settings = settings
        # The platforms' limits (the windows); what was spent lives in the database (SendBudget).
        self.throttle = throttle or RecipientThrottle()
        self.budget = SendBudget(engine, holder=owner or process_identity())
        # A reservation counts as in flight until then: longer than any send may take.
        self.hold = timedelta(seconds=send_timeout + 10.0)
        self.metrics = DeliveryMetrics(registry)
        self.lang = settings.server.language
        self.render_digest = make_text_digest(self.lang)
        self.render_storm = render_storm or make_storm_digest(self.lang)
        self.link_for = link_for
        self.text_for = text_for
        # Told of a lead's card delivered LATE_CARD or more after it was written, to redraw it if
        # the lead changed while it waited (the flow knows what the copy should show now).
        self.after_late_card = after_late_card
        self.rng = rng
        self.backoff = backoff
        self.quiet_hours = quiet_hours
        self.calendar = WorkCalendar.from_settings(settings.calendar)
        self.batch_size = batch_size
        self.lookahead_limit = lookahead_limit
        self.lease_seconds = lease_seconds
        self.send_timeout = send_timeout
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self.gauge_interval = gauge_interval
        self.incident_ttl = incident_ttl
        self.log = log or get_logger("leadbot.outbox")
        self._sem = asyncio.Semaphore(concurrency)
        # One tick at a time per worker: `drain` (tests, the sandbox's settle, the CLI) then waits
        # for a tick the background loop has in flight instead of finding its rows leased and
        # returning before they are sent.
        self._tick = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._gauges_at: datetime | None = None
        # Rows this worker holds leases on ({id: the lease's attempt}): the heartbeat renews them
        # while a tick works through them, so a long tick (a slow platform, a big look-ahead) is
        # not taken over by another process; an expired one is, and its writes here are fenced.
        self._inflight: dict[int, int] = {}
        self._heartbeat: Heartbeat | None = None
        self.blocks = SendBlocks(engine, clock)
        self._blocked: dict[tuple[str, str], datetime] = {}
        # conformance W6: every platform id leadbot makes (task_id, outTrackId, msgUuid) carries
        # this database's deployment id (store.kv.deployment_id), read at the first tick.
        self.namespace: str | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = False
        self._heartbeat = Heartbeat(self._renew, self.lease_seconds / 3, log=self.log, name="outbox")
        await self._heartbeat.__aenter__()
        self._task = asyncio.create_task(self._loop(), name="leadbot-outbox")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        if self._heartbeat is not None:
            await self._heartbeat.__aexit__(None, None, None)
            self._heartbeat = None

    async def _renew(self) -> bool:
        leases = dict(self._inflight)
        if leases:
            lost = set(leases) - await self.repo.renew(leases, self.lease_seconds)
            lost &= set(self._inflight)  # not finished meanwhile
            if lost:
                self.log.warning("outbox.lease_lost", rows=sorted(lost)[:20])
        return True

    def _hold(self, entries: Iterable[OutboxEntry]) -> None:
        for e in entries:
            self._inflight[e.id] = e.attempts

    def wake(self) -> None:
        """Call after enqueueing, so the message does not wait for the next poll."""
        self._wake.set()

    async def _loop(self) -> None:
        while not self._stopping:
            # From here on a wake means a row this tick's lease may not have seen (enqueued
            # meanwhile, or written by the tick itself: a text copy, a fallback).
            self._wake.clear()
            try:
                done = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("outbox.tick_failed")
                done = 0
            # A lease short of the batch took everything due: no tick until there is news (a
            # tick with nothing to do cost a lone card ~15% of its delivery CPU).
            if done < self.batch_size and not self._wake.is_set():
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                except asyncio.TimeoutError:
                    pass

    async def drain(self, max_ticks: int = 1000) -> int:
        """Runs ticks until nothing is due now (tests, bench, the CLI)."""
        total = 0
        for _ in range(max_ticks):
            n = await self.run_once()
            if n == 0:
                break
            total += n
        return total

    # ---- one tick ----------------------------------------------------------------------------

    async def run_once(self) -> int:
        async with self._tick:
            try:
                return await self._run_once()
            finally:
                self._inflight.clear()  # a tick ends with every row it leased settled

    async def _run_once(self) -> int:
        now = self.clock.now()
        # No send windows read here: the budget's reservations are the windows (see _plan).
        batch = await self.repo.take_batch(self.batch_size, now, lease_seconds=self.lease_seconds,
                                           sends_since=now, windowed_channels=())
        entries, reps = batch.entries, batch.reps
        self._hold(entries)
        if not entries:
            await self._refresh_gauges(now)
            return 0
        if self.namespace is None:
            self.namespace = await deployment_id(self.repo.engine, self.clock)
        # Blocks other processes found (a robot's 10 minutes, an app's QPM minute) hold here too.
        self._blocked = await self.blocks.active()
        groups: dict[tuple[str, str], list[OutboxEntry]] = {}
        for e in entries:
            until = self._quiet(e, now)
            if until is not None:
                await self.repo.defer(e, until, HELD_REASON)
                continue
            groups.setdefault((e.channel, e.recipient), []).append(e)
        await asyncio.gather(*(self._run_group(ch, rcpt, group, reps, now)
                               for (ch, rcpt), group in groups.items()))
        await self._refresh_gauges(now)
        return len(entries)

    async def _run_group(self, channel: str, recipient: str, group: list[OutboxEntry],
                         reps: dict[int, RepContact], now: datetime) -> None:
        async with self._sem:
            blocked = self._blocked_until(channel, recipient, now)
            if blocked is not None:
                for e in group:
                    await self.repo.defer(e, blocked, "throttled: the platform holds this robot/app back")
                return
            plan = await self._plan(channel, recipient, group, reps, now)
            for e in plan.send:
                await self._deliver(e, reps, plan.slots.pop(e.id, None))
            await self.budget.release(plan.slots.values())  # reserved, not needed after all
            for e in plan.later:
                await self.repo.defer(e, plan.next_free, "throttled: over the platform's per-recipient limit")

    def _blocked_until(self, channel: str, recipient: str, now: datetime) -> datetime | None:
        scopes = ((channel, recipient_ref(recipient)), (channel, APP_WIDE))
        ends = [t for t in (self._blocked.get(s) for s in scopes) if t is not None and t > now]
        return max(ends) if ends else None

    def _counts(self, e: OutboxEntry) -> bool:
        return e.kind not in UNCOUNTED_KINDS and e.channel in self.throttle.limits

    @staticmethod
    def _rollable(e: OutboxEntry) -> bool:
        return (not e.urgent and e.kind in ROLLABLE_KINDS and bool(e.payload.get("rollup", True))
                and not e.payload.get("alert") and not e.payload.get("digest"))

    @staticmethod
    def _storm(e: OutboxEntry) -> bool:
        """An escalation (the ladder marks them ``storm``), not already a digest."""
        return e.urgent and bool(e.payload.get("storm")) and not e.payload.get("digest")

    async def _calm_storm(self, channel: str, recipient: str, group: list[OutboxEntry],
                          reps: dict[int, RepContact], now: datetime) -> list[OutboxEntry]:
        """Past STORM_PER_MINUTE escalations a minute to one recipient (counted across processes),
        every escalation due for that recipient, its siblings leased by this tick or not, goes
        into ONE urgent digest now: none waits behind a queue of the others."""
        stormy = [e for e in group if self._storm(e)]
        if not stormy:
            return group
        allowed = await self.budget.reserve(scope_for(f"storm:{channel}", recipient), len(stormy),
                                            [(STORM_PER_MINUTE, 60.0)], now, hold=timedelta(0))
        if len(allowed.ids) == len(stormy):
            return group
        more = await self.repo.take_due(self.lookahead_limit, now, lease_seconds=self.lease_seconds,
                                        channel=channel, recipient=recipient)
        self._hold(more)
        missing = {m.rep_id for m in more if m.rep_id is not None and m.rep_id not in reps}
        if missing:
            reps.update(await self.repo.rep_contacts(missing))
        for m in more:
            until = self._quiet(m, now)
            if until is not None:
                await self.repo.defer(m, until, HELD_REASON)
            else:
                group.append(m)
        stormy = sorted((e for e in group if self._storm(e)), key=lambda e: e.id)
        rolled = stormy[len(allowed.ids):]
        if not rolled:
            return group
        rolled_ids = {e.id for e in rolled}
        slot = await self.budget.reserve(scope_for(f"storm-digest:{channel}", recipient), 1,
                                         [(STORM_DIGESTS_PER_MINUTE, 60.0)], now, hold=timedelta(0))
        if not slot.ids:
            for e in rolled:
                await self.repo.defer(e, slot.next_free, "escalation storm: gathered into the next digest")
            return [e for e in group if e.id not in rolled_ids]
        key = "storm:" + digest_key(channel, recipient, (e.id for e in rolled))
        kind, payload = self.render_storm(channel, recipient, rolled, key)
        rep_ids = {e.rep_id for e in rolled}
        payload.update(digest=True, storm_digest=True, rollup=False, count=len(rolled),
                       lead_ids=[e.lead_id for e in rolled if e.lead_id is not None],
                       rolled_keys=[e.idempotency_key for e in rolled])
        item = NewOutboxItem(key=key, channel=channel,
                             kind=kind, recipient=recipient, payload=payload, urgent=True,
                             rep_id=next(iter(rep_ids)) if len(rep_ids) == 1 else None)
        digest = await self.repo.roll_up(rolled, item, lease_seconds=self.lease_seconds)
        if digest is None:
            self.log.warning("outbox.storm_lease_lost", channel=channel, count=len(rolled))
            return [e for e in group if e.id not in rolled_ids]
        self._hold([digest])
        self.metrics.rolled_up.labels(channel).inc(len(rolled))
        self.log.info("outbox.storm_digest", channel=channel, count=len(rolled), digest=digest.id)
        return [e for e in group if e.id not in rolled_ids] + [digest]

    def _windows(self, channel: str) -> list[tuple[int, float]]:
        return [(w.limit, w.seconds + CLOCK_MARGIN_SECONDS) for w in self.throttle.limits.get(channel, ())]

    async def _plan(self, channel: str, recipient: str, group: list[OutboxEntry], reps: dict[int, RepContact],
                    now: datetime) -> "_Plan":
        group = await self._calm_storm(channel, recipient, group, reps, now)
        counted = [e for e in group if self._counts(e)]
        free = [e for e in group if not self._counts(e)]
        if not counted:
            return _Plan(free, [], {}, now)
        grant = await self.budget.reserve(scope_for(channel, recipient), len(counted), self._windows(channel),
                                          now, hold=self.hold)
        budget = len(grant.ids)
        # Room left after the whole group: it all goes. A group that used the last slot (or found
        # too few) takes the rest of the recipient's backlog: that slot carries one roll-up.
        if budget == len(counted) and grant.room_left > 0:
            return _Plan(free + counted, [], dict(zip((e.id for e in counted), grant.ids)), grant.next_free)
        if budget > 0:
            # Look-ahead: the whole backlog for this recipient decides the roll-up, not just
            # the slice this batch happened to lease.
            more = await self.repo.take_due(self.lookahead_limit, now, lease_seconds=self.lease_seconds,
                                            channel=channel, recipient=recipient)
            self._hold(more)
            missing = {m.rep_id for m in more if m.rep_id is not None and m.rep_id not in reps}
            if missing:
                reps.update(await self.repo.rep_contacts(missing))
            for m in more:
                until = self._quiet(m, now)
                if until is not None:
                    await self.repo.defer(m, until, HELD_REASON)
                elif self._counts(m):
                    counted.append(m)
                else:
                    free.append(m)
        send: list[OutboxEntry] = []
        later: list[OutboxEntry] = []
        slots = budget
        must_go = [e for e in counted if not self._rollable(e)]
        rollable = sorted((e for e in counted if self._rollable(e)), key=lambda e: e.id)
        for e in must_go:
            if slots > 0:
                send.append(e)
                slots -= 1
            else:
                later.append(e)
        if len(rollable) <= slots:
            send.extend(rollable)
        elif slots >= 1:
            individual, rolled = rollable[:slots - 1], rollable[slots - 1:]
            send.extend(individual)
            digest = await self._roll_up(channel, recipient, rolled, reps)
            if digest is not None:
                send.append(digest)
        else:
            later.extend(rollable)
        # Every counted message that goes out holds one of the reservations; the rest are released.
        return _Plan(free + send, later, dict(zip((e.id for e in send), grant.ids)), grant.next_free)

    async def _roll_up(self, channel: str, recipient: str, rolled: Sequence[OutboxEntry],
                       reps: dict[int, RepContact]) -> OutboxEntry | None:
        rep_ids = {e.rep_id for e in rolled}
        rep_id = next(iter(rep_ids)) if len(rep_ids) == 1 else None
        rep = reps.get(rep_id) if rep_id is not None else None
        kind, payload = self.render_digest(channel, recipient, rolled, rep)
        payload = dict(payload)
        payload.setdefault("text", "\n".join(summary_of(e, self.lang) for e in rolled))
        payload.update(digest=True, rollup=False, count=len(rolled),
                       lead_ids=[e.lead_id for e in rolled if e.lead_id is not None],
                       rolled_keys=[e.idempotency_key for e in rolled])
        item = NewOutboxItem(key=digest_key(channel, recipient, (e.id for e in rolled)), channel=channel,
                             kind=kind, recipient=recipient, payload=payload, rep_id=rep_id)
        digest = await self.repo.roll_up(rolled, item, lease_seconds=self.lease_seconds)
        if digest is not None:
            self._hold([digest])
        if digest is None:
            self.log.warning("outbox.rollup_lease_lost", channel=channel, count=len(rolled))
            return None
        self.metrics.rolled_up.labels(channel).inc(len(rolled))
        self.log.info("outbox.rolled_up", channel=channel, count=len(rolled), digest=digest.id)
        return digest

    def _quiet(self, e: OutboxEntry, now: datetime) -> datetime | None:
        # Machine-to-machine channels (CRM webhooks) wake nobody: no quiet hours for them.
        if (not self.quiet_hours or e.kind in ("card_update", "remark") or e.payload.get("alert")
                or e.channel == "webhook"):
            return None
        return hold_until(now, self.settings, self.calendar, urgent=e.urgent, payload=e.payload)

    # ---- one message -------------------------------------------------------------------------

    @staticmethod
    def _form(e: OutboxEntry, rep: RepContact | None) -> str:
        if e.kind == "card":
            return "text" if rep is not None and rep.delivery == "text" else "card"
        return e.kind

    @staticmethod
    def _with_text_copy(e: OutboxEntry, rep: RepContact) -> bool:
        """conformance W3 (wecom/90236): the WeChat plug-in (微工作台) shows no template card, and
        message/send answers errcode 0 all the same; WeCom offers no field or failure that tells
        leadbot who reads through the plug-in. So "auto" (the default profile) sends a WeCom card
        with its text copy (H5 link included); "card" (set by the admin's rep CSV, or by the rep
        with 卡片模式) is for reps known to use the WeCom app."""
        if rep.delivery == "both":
            return True
        return rep.delivery == "auto" and PLATFORM_OF.get(e.channel) == "wecom"

    def _text_copy(self, e: OutboxEntry) -> NewOutboxItem:
        return NewOutboxItem(key=f"{e.idempotency_key}:text", channel=e.channel, kind="text", recipient=e.recipient,
                             payload={**e.payload, "copy_of": e.idempotency_key}, rep_id=e.rep_id,
                             lead_id=e.lead_id, urgent=e.urgent)

    def _other_platform(self, e: OutboxEntry, rep: RepContact | None) -> NewOutboxItem | None:
        if rep is None or e.kind == "card_update" or e.payload.get("fallback_from"):
            return None
        other = OTHER_PLATFORM.get(e.channel)
        userid = rep.userid_on(other) if other else None
        if not other or not userid:
            return None
        return NewOutboxItem(key=f"{e.idempotency_key}:via:{other}", channel=other, kind=e.kind, recipient=userid,
                             payload={**e.payload, "fallback_from": e.channel}, rep_id=e.rep_id,
                             lead_id=e.lead_id, urgent=e.urgent)

    async def _message(self, e: OutboxEntry, form: str, rep: RepContact | None) -> OutboundMessage:
        text, link = "", None
        if form == "text":
            body = self.text_for(e) if self.text_for else str(e.payload.get("text") or summary_of(e, self.lang))
            link = e.payload.get("link") or None
            if link is None and self.link_for is not None:
                got = self.link_for(e, rep)
                link = await got if inspect.isawaitable(got) else got
            text = compose_text(body, link, self.lang)
        return OutboundMessage(key=e.idempotency_key, dedupe_id=dedupe_id(e.idempotency_key, self.namespace or ""),
                               channel=e.channel,
                               kind=e.kind, form=form, recipient=e.recipient, payload=e.payload, text=text,
                               link=link, rep_id=e.rep_id, lead_id=e.lead_id, attempt=e.attempts,
                               redelivery=e.redelivery, urgent=e.urgent)

    async def _deliver(self, e: OutboxEntry, reps: dict[int, RepContact], slot: int | None = None) -> None:
        rep = reps.get(e.rep_id) if e.rep_id is not None else None
        form = self._form(e, rep)
        if form == "card" and rep is not None and self._with_text_copy(e, rep):
            if await self.repo.enqueue(self._text_copy(e)) is not None:  # insert-or-ignore: safe on every retry
                self.wake()
        if self._counts(e) and slot is None:  # never sent without a reservation
            await self.repo.defer(e, self.clock.now(), "no send budget reserved")
            return
        msg = await self._message(e, form, rep)
        try:
            result = await asyncio.wait_for(self.sender.send(msg), self.send_timeout)
        except asyncio.TimeoutError:
            result = DeliveryResult.failed("retry", "send timed out")
        except Exception as exc:  # a bug or a network error in an adapter: retry, then dead-letter
            self.log.warning("outbox.send_raised", channel=e.channel, key=e.idempotency_key,
                             error=type(exc).__name__)
            result = DeliveryResult.failed("retry", f"{type(exc).__name__}: {exc}")
        await self._record(e, form, msg, result, rep, slot)

    async def _settle(self, slot: int | None, result: DeliveryResult) -> None:
        """The reservation after a failed send: a refusal the platform answered (or a send held
        back here) never reached the recipient and gives its slot back; a timeout or a throttle
        answer may have counted there, so it keeps it (from now)."""
        if slot is None:
            return
        if (result.error_kind or "retry") in ("retry", "throttle"):
            await self.budget.confirm([slot], self.clock.now())
        else:
            await self.budget.release([slot])

    async def _late_card(self, card: CardRecord) -> None:
        assert self.after_late_card is not None
        try:
            await self.after_late_card(card)
        except Exception as exc:  # the send is recorded; a failed redraw must not undo or repeat it
            self.log.warning("outbox.late_card_redraw_failed", lead_id=card.lead_id, error=type(exc).__name__)

    async def _record(self, e: OutboxEntry, form: str, msg: OutboundMessage, result: DeliveryResult,
                      rep: RepContact | None, slot: int | None = None) -> None:
        if result.ok:
            ids = {**dict(result.platform_ids), "form": form}
            card = None
            if form == "card":
                meta = e.payload.get("meta")
                card = CardRecord(card_kind=str(e.payload.get("card_kind") or ("digest" if e.payload.get("digest") else e.kind)),
                                  platform=PLATFORM_OF.get(e.channel, e.channel), recipient=e.recipient,
                                  card_ref=str(ids.get("task_id") or ids.get("outTrackId") or msg.dedupe_id),
                                  lead_id=e.lead_id, msgid=str(ids.get("msgid") or ""),
                                  response_code=str(ids.get("response_code") or ""),
                                  shown=str(e.payload.get("shown") or ""),
                                  meta=dict(meta) if isinstance(meta, dict) else {})
            if await self.repo.mark_sent(e, ids, card, reservation=slot):
                self.metrics.sent.labels(e.channel, form).inc()
                if card is not None and card.lead_id and self.after_late_card is not None \
                        and self.clock.now() - e.created_at >= LATE_CARD:
                    await self._late_card(card)
            else:
                await self.budget.confirm([slot] if slot is not None else [], self.clock.now())
                self.log.warning("outbox.lease_lost_after_send", key=e.idempotency_key)
            return
        await self._settle(slot, result)
        kind = result.error_kind or "retry"
        if kind == "blocked":
            await self.repo.defer(e, self.clock.now() + timedelta(seconds=result.retry_after or 1.0),
                                  f"blocked: {result.message}")
            return
        self.metrics.failures.labels(e.channel, kind).inc()
        error = f"{kind}: {result.message}".strip()
        if kind == "throttle":
            await self._throttled(e, result, error)
            return
        if kind == "retry":
            if e.attempts >= self.max_attempts:
                await self._dead(e, f"gave up after {e.attempts} attempts: {error}")
                return
            delay = self.backoff(e.attempts, self.rng)
            if result.retry_after:
                delay = max(delay, result.retry_after)
            await self.repo.mark_retry(e, error, self.clock.now() + timedelta(seconds=delay))
            return
        if kind == "text_copy" and form == "card":
            # conformance W5: the refusal does not say whether the first attempt arrived; the
            # text copy makes sure it did, whatever the card did.
            if await self.repo.supersede(e, self._text_copy(e), error):
                self.metrics.fallbacks.labels(e.channel, "text").inc()
                self.wake()
            return
        if kind == "unreached":
            # conformance D3: accepted but never shown to this rep. Another way, and the row is
            # not "sent" (nothing counts the rep as reached) until that way has reached them.
            alt = self._unreached_route(e, rep)
            if alt is not None:
                if await self.repo.supersede(e, alt, error):
                    self.metrics.fallbacks.labels(e.channel, alt.channel).inc()
                    self.wake()
                return
            await self._dead(e, error)
            return
        if kind == "card_unsupported" and form == "card":
            if rep is not None and rep.delivery == "auto" and await self.repo.switch_auto_to_both(rep.id):
                self.log.info("outbox.rep_switched_to_both", rep=rep.id)
            if await self.repo.supersede(e, self._text_copy(e), error):
                self.metrics.fallbacks.labels(e.channel, "text").inc()
                self.wake()
            return
        if e.kind == "card_update":
            await self._update_refused(e, error)
            return
        alt = self._other_platform(e, rep)
        if alt is not None:
            if await self.repo.supersede(e, alt, error):
                self.metrics.fallbacks.labels(e.channel, alt.channel).inc()
                self.wake()
            return
        await self._dead(e, error)

    async def _throttled(self, e: OutboxEntry, result: DeliveryResult, error: str) -> None:
        """A throttle is never a dead letter: the row waits out what the platform said (or a
        backoff of at least a minute) without spending an attempt; a throttle of a whole robot
        or app is recorded for every process (store.send_blocks)."""
        now = self.clock.now()
        delay = result.retry_after if result.retry_after else max(60.0, self.backoff(e.attempts, self.rng))
        until = now + timedelta(seconds=delay)
        if result.scope in ("recipient", "app"):
            recipient = e.recipient if result.scope == "recipient" else APP_WIDE
            await self.blocks.block(e.channel, recipient, until, error)
            ref = (e.channel, recipient_ref(recipient))
            self._blocked[ref] = max(until, self._blocked.get(ref, until))
        self.log.warning("outbox.throttled", channel=e.channel, key=e.idempotency_key, scope=result.scope,
                         retry_in=round(delay, 1), error=error[:200])
        await self.repo.defer(e, until, error)

    def _unreached_route(self, e: OutboxEntry, rep: RepContact | None) -> NewOutboxItem | None:
        """Where a message goes that the platform accepted but will not show: a DingTalk work
        notice goes again as the app robot's one-to-one text (its own daily limits), anything
        else to the rep's other platform."""
        if e.channel == "dingtalk" and not e.payload.get("via"):
            return NewOutboxItem(key=f"{e.idempotency_key}:via:robot", channel=e.channel, kind="text",
                                 recipient=e.recipient, payload={**e.payload, "via": "robot"}, rep_id=e.rep_id,
                                 lead_id=e.lead_id, urgent=e.urgent)
        return self._other_platform(e, rep)

    async def _update_refused(self, e: OutboxEntry, error: str) -> None:
        """A copy the platform will not update (its code spent or too old, the card gone): the copy
        is left as it is, which is all the platform allows; when the change concerns the
        recipient, the producer put a message for them in ``notice`` and it goes out instead.
        Never a dead letter: nothing was lost that a retry could deliver."""
        code = str(e.payload.get("response_code") or "")
        card_ref = str((e.payload.get("wecom_card") or {}).get("task_id") or e.payload.get("out_track_id") or "")
        if code and card_ref:
            await self.repo.spend_code(PLATFORM_OF.get(e.channel, e.channel), card_ref, e.recipient, code,
                                       self.clock.now())
        notice = e.payload.get("notice")
        if isinstance(notice, str) and notice:
            item = NewOutboxItem(key=f"{e.idempotency_key}:notice", channel=e.channel, kind="text",
                                 recipient=e.recipient, payload={"text": notice}, rep_id=e.rep_id,
                                 lead_id=e.lead_id, urgent=e.urgent)
            if await self.repo.supersede(e, item, error):
                self.wake()
            return
        await self.repo.mark_skipped(e, error)
        self.log.info("outbox.update_skipped", key=e.idempotency_key, channel=e.channel, error=error[:200])

    # ---- dead-letter -------------------------------------------------------------------------

    def _alert_channels(self) -> list[str]:
        configured = [c for c in ("wecom", "dingtalk") if getattr(self.settings, c, None) is not None]
        return configured or ["wecom", "dingtalk"]

    def _alerts(self, first_error: str) -> Callable[[str, Sequence[RepContact]], list[NewOutboxItem]]:
        def build(incident: str, admins: Sequence[RepContact]) -> list[NewOutboxItem]:
            text = t("delivery.dead_alert", self.lang, error=first_error[:200])
            items = []
            for admin in admins:
                for channel in self._alert_channels():
                    userid = admin.userid_on(channel)
                    if userid:
                        items.append(NewOutboxItem(
                            key=f"alert:outbox-dead:{incident}:{admin.id}", channel=channel, kind="text",
                            recipient=userid, rep_id=admin.id, urgent=True,
                            payload={"text": text, "alert": True, "rollup": False, "incident": incident}))
                        break
            if not items:
                self.log.error("outbox.dead_no_admin_to_alert", incident=incident)
            return items

        return build

    async def _dead(self, e: OutboxEntry, error: str) -> None:
        alerts = None if e.payload.get("alert") else self._alerts(error)
        incident = await self.repo.mark_dead(e, error, alerts=alerts, incident_ttl=self.incident_ttl)
        self.log.error("outbox.dead", key=e.idempotency_key, channel=e.channel, error=error[:300],
                       incident=incident)
        if incident:
            self.wake()
        self._gauges_at = None

    async def _refresh_gauges(self, now: datetime) -> None:
        if self._gauges_at is not None and (now - self._gauges_at).total_seconds() < self.gauge_interval:
            return
        self._gauges_at = now
        counts = await self.repo.counts()
        self.metrics.dead.set(counts.get("dead", 0))
        self.metrics.pending.set(counts.get("pending", 0) + counts.get("sending", 0))
        held, oldest, _ = await self.repo.held(HELD_REASON)
        self.metrics.held.set(held)
        self.metrics.held_age.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)



class _Plan:
    """What one recipient's share of a tick does: ``send`` now (each counted message with its
    reservation in ``slots``, by outbox id), defer ``later`` to ``next_free``."""

    __slots__ = ("send", "later", "slots", "next_free")

    def __init__(self, send: list[OutboxEntry], later: list[OutboxEntry], slots: dict[int, int],
                 next_free: datetime) -> None:
        self.send, self.later, self.slots, self.next_free = send, later, slots, next_free
