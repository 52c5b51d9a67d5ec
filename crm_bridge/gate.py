"""In-order delivery per entity and webhook URL.

The outbox delivers rows independently (retries reorder them), but a CRM must see a lead's
``claimed`` before its ``stage_advanced``. Before a change event is sent, the gate looks for an
earlier row (lower id) of the same entity to the same URL that is not sent yet; while there is
one, the row waits (without spending a delivery attempt) until that row's next attempt.

Row ids follow commit order per entity: every change locks the entity row (conditional UPDATE
or SELECT ... FOR UPDATE) before it writes its outbox rows in the same transaction.
A dead-lettered predecessor blocks its successors too: skipping it would apply a later state
over a missing one; `leadbot outbox --retry-dead` releases the whole chain in order.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.models import OutboxItem
from crm_bridge.capture import CHANNEL
from leadbot.clock import Clock

MIN_WAIT = 1.0


class EntityOrderGate:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    async def wait_seconds(self, key: str, recipient: str) -> float | None:
        """None when the row may go now; else how long to hold it back."""
        parts = key.split(":")
        if len(parts) < 4 or parts[0] != "crm":
            return None
        prefix = ":".join(parts[:3]) + ":"
        async with self.engine.connect() as conn:
            own = (await conn.execute(select(OutboxItem.id).where(OutboxItem.idempotency_key == key))).scalar()
            if own is None:
                return None
            blocker = (await conn.execute(
                select(OutboxItem.state, OutboxItem.next_attempt_at)
                .where(OutboxItem.channel == CHANNEL, OutboxItem.recipient == recipient,
                       OutboxItem.idempotency_key.startswith(prefix, autoescape=True),
                       OutboxItem.id < own, OutboxItem.state != "sent")
                .order_by(OutboxItem.id).limit(1))).first()
        if blocker is None:
            return None
        state, next_at = blocker
        if state == "dead":
            return 300.0
        return max(MIN_WAIT, _seconds_until(next_at, self.clock.now()))


def _seconds_until(when: datetime | None, now: datetime) -> float:
    if when is None:
        return MIN_WAIT
    if when.tzinfo is None:
        from datetime import timezone

        when = when.replace(tzinfo=timezone.utc)
    return (when - now).total_seconds()
