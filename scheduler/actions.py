"""What the scheduler asks the rest of leadbot to do when a timer fires.

The scheduler knows no platform, handler or outbox: bot/app.py injects an object with these
methods. Each receives the firing timer's key; derive the outbox idempotency key from it (e.g.
f"{timer_key}:dm:{rep_id}"), so a timer retried after a crash never sends twice. An action that
raises is retried with backoff (same key), so actions must be idempotent on that key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Protocol, runtime_checkable

if TYPE_CHECKING:
    from scheduler.digest import DigestReport

# Timer kinds (the `timers.kind` column).
REMIND = "ladder.remind"
ESCALATE = "ladder.escalate"
REASSIGN = "ladder.reassign"
POOL_RETURN = "ladder.pool_return"
# The steps one owner gets in an assignment cycle (a reassign replaces them for the next owner);
# the cycle's pool return is not among them: it survives reassigns.
OWNER_STEPS = (REMIND, ESCALATE, REASSIGN)
LADDER_KINDS = (*OWNER_STEPS, POOL_RETURN)
STAGE_OWNER = "stage.owner"
STAGE_MANAGER = "stage.manager"
STAGE_KINDS = (STAGE_OWNER, STAGE_MANAGER)
POOL_RECYCLE = "pool.recycle"
DIGEST = "digest.daily"
ROUTE_AT_WINDOW = "route.window"  # a lead that came in off hours with nobody on duty


@runtime_checkable
class LadderActions(Protocol):
    """Payloads carry what the step was planned for: owner_id, epoch, attempt, step; for
    stagnation also stage, level ("owner"|"manager"), limit_seconds."""

    async def remind(self, lead_id: int, timer_key: str, payload: Mapping[str, Any]) -> None:
        """Remind the owner that the lead is still untouched."""

    async def escalate(self, lead_id: int, timer_key: str, payload: Mapping[str, Any]) -> None:
        """Tell the manager (direct message + managers' group robot) with a one-tap reassign."""

    async def reassign(self, lead_id: int, timer_key: str, payload: Mapping[str, Any]) -> None:
        """Route the lead to the next rep; then call scheduler.ladder.start_ladder(...,
        epoch=payload["epoch"], attempt=payload["attempt"] + 1) for the new owner."""

    async def return_to_pool(self, lead_id: int, timer_key: str, payload: Mapping[str, Any]) -> None:
        """Take the lead from its owner into the pool; then start_pool_recycle(...)."""

    async def recycle_from_pool(self, lead_id: int, timer_key: str, payload: Mapping[str, Any]) -> None:
        """A lead sat unclaimed in the pool for sla.pool_recycle: route it again or escalate."""

    async def stagnation(self, lead_id: int, timer_key: str, payload: Mapping[str, Any]) -> None:
        """The lead sat in payload["stage"] past its limit: alert payload["level"] (owner, manager)."""

    async def route_at_window(self, lead_id: int, timer_key: str, payload: Mapping[str, Any]) -> None:
        """The working window opened for a lead that waited (payload["until"]): route it now."""

    async def digest(self, report: "DigestReport", chart_png: bytes | None, timer_key: str) -> None:
        """Send the day's digest to report.team's manager (and its group robot)."""
