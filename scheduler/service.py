"""LadderService: the `ladder` service bot/journey/flow.py calls (start / cancel / snooze), plus the stage
watch, the pool recycle and the silence flag, over one TimerStore."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping

from store.timers import FIRED, FIRING, PENDING, TimerStore
from leadbot.clock import Clock
from leadbot.settings import Settings
from scheduler.actions import ESCALATE, OWNER_STEPS
from scheduler.ladder import (cancel_ladder, card_deadline, epoch_of, is_silent, route_at_window, schedule_ladder,
                              start_pool_recycle, start_stage_watch)


class LadderService:
    def __init__(self, timers: TimerStore, settings: Settings, clock: Clock) -> None:
        self.timers = timers
        self.settings = settings
        self.clock = clock

    async def start(self, lead: Any, *, cycle: Mapping[str, Any] | None = None, team: str = "") -> datetime | None:
        """After routing gave the lead an owner. Counted from now (the assignment just happened).
        The epoch is the lead's version, so a retried call adds nothing and a later assignment
        (a new version) gets a ladder of its own. From the REASSIGN action pass its payload as
        `cycle`: the new owner's steps join the running cycle and its single pool deadline.
        Returns the lead's card deadline (see deadline()), without reading the timers back when
        this call wrote the whole ladder."""
        now = self.clock.now()
        settings = self.for_team(team)
        if cycle:
            specs, fresh = await schedule_ladder(self.timers, lead.id, now, settings, owner_id=lead.owner_id,
                                                 epoch=str(cycle["epoch"]), attempt=int(cycle.get("attempt", 0)) + 1)
        else:
            specs, fresh = await schedule_ladder(self.timers, lead.id, now, settings, owner_id=lead.owner_id,
                                                 epoch=f"v{getattr(lead, 'version', 1)}-{epoch_of(now)[:8]}")
        if fresh and not cycle:
            return card_deadline((s.kind, s.due_at) for s in specs)
        return await self.deadline(lead)

    def for_team(self, team: str) -> Settings:
        """The settings whose calendar counts the team's working time ([calendar.teams])."""
        return self.settings.replace(calendar=self.settings.calendar.for_team(team)) if team else self.settings

    async def route_at_window(self, lead: Any, until: datetime) -> None:
        """The lead waits for the next working window; a timer routes it then."""
        await route_at_window(self.timers, lead.id, until)

    async def deadline(self, lead: Any) -> datetime | None:
        """The deadline a lead's card counts down to: its next pending escalation step, or the
        one already missed (see card_deadline)."""
        timers = await self.timers.for_lead(lead.id, [PENDING, FIRING, FIRED])
        since = getattr(lead, "assigned_at", None)  # an escalation of an earlier owner's ladder is not theirs
        return card_deadline(((t.kind, t.due_at) for t in timers if t.state == PENDING),
                             (t.due_at for t in timers if t.state in (FIRING, FIRED) and t.kind == ESCALATE
                              and (since is None or t.due_at >= since)))

    async def cancel(self, lead: Any, reason: str = "") -> int:
        """Claim, pass, first contact, stage advance, reassign: the rest of the ladder is moot."""
        return await cancel_ladder(self.timers, lead.id)

    async def snooze(self, lead: Any, delay: timedelta) -> int:
        """The owner asked for time: the next ladder step comes no sooner than now + delay and the
        ones after it keep their spacing. The cycle's pool deadline does not move."""
        steps = [t for t in await self.timers.for_lead(lead.id, [PENDING]) if t.kind in OWNER_STEPS]
        if not steps:
            return 0
        shift = self.clock.now() + delay - min(t.due_at for t in steps)
        if shift <= timedelta(0):
            return 0
        moved = 0
        for t in steps:
            moved += await self.timers.reschedule(t.key, t.due_at + shift)
        return moved

    async def stage_entered(self, lead: Any, stage: str | None = None, at: datetime | None = None, *,
                            team: str = "") -> None:
        """Stage limits count in the working time of `team` (the owner's) like the ladder."""
        await start_stage_watch(self.timers, lead.id, stage or lead.stage,
                                at or getattr(lead, "stage_entered_at", None) or self.clock.now(), self.for_team(team))

    async def pooled(self, lead: Any, at: datetime | None = None, *, team: str = "") -> None:
        """The pool recycle counts in the working time of `team` (the pool's) like the ladder."""
        await cancel_ladder(self.timers, lead.id)
        await start_pool_recycle(self.timers, lead.id, at or self.clock.now(), self.for_team(team))

    def is_silent(self, lead: Any) -> bool:
        return is_silent(lead, self.clock.now(), self.settings)
