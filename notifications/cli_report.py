"""`leadbot outbox`: what is waiting and what is dead, for the operator who got the alert."""

from __future__ import annotations

from typing import Any, Sequence

from store.outbox import OUTBOX_STATES, OutboxEntry, OutboxRepo
from leadbot.clock import utc
from leadbot.settings import CalendarSettings
from leadbot.time_policy import stamp


def _line(e: OutboxEntry, calendar: Any) -> str:
    error = (e.last_error or "").replace("\n", " ")[:120]
    # In the configured zone, like every time shown to a person (a held row says until when).
    return (f"  #{e.id:<6} {e.channel:<14} {e.kind:<11} to={e.recipient:<20} lead={e.lead_id or '-':<6} "
            f"attempts={e.attempts} next={stamp(utc(e.next_attempt_at), calendar)} key={e.idempotency_key}"
            + (f"\n           error: {error}" if error else ""))


async def outbox_report(engine: Any, limit: int = 20, calendar: Any = None) -> str:
    calendar = calendar if calendar is not None else CalendarSettings()
    repo = OutboxRepo(engine)
    counts = await repo.counts()
    known = [s for s in OUTBOX_STATES if s in counts] + sorted(s for s in counts if s not in OUTBOX_STATES)
    lines = ["outbox: " + (", ".join(f"{s}={counts[s]}" for s in known) if counts else "empty")]
    for title, states in (("pending", ("pending", "sending")), ("dead", ("dead",))):
        rows = await repo.list(states, limit)
        total = sum(counts.get(s, 0) for s in states)
        lines.append(f"{title} ({total}{', first ' + str(limit) if total > limit else ''}):")
        lines.extend(_line(e, calendar) for e in rows)
        if not rows:
            lines.append("  none")
    return "\n".join(lines)


async def outbox_requeue_dead(engine: Any, ids: Sequence[int] | None = None) -> int:
    """`leadbot outbox --retry-dead [ID…]`: dead rows go back to pending; the incident closes."""
    return await OutboxRepo(engine).requeue_dead(ids)
