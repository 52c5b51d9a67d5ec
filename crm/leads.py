"""State changes on leads that a tap can cause: claim, pass, advance stage, reassign, contact.

Every change is a conditional update (exactly once, whatever the concurrency), writes an audit
row and, where it matters, an activity or stage-history row, all in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from store import dto
from store.actors import rep_actor
from store.db import session_factory
from store.lead_status import UNCLAIMED, WORKING as OPEN_STATUSES
from store.models import Activity, AuditEntry, Lead, Rep, StageHistory, Timer
from store.rows import lead_dto
from leadbot.clock import Clock

# A tap's after-effects (the lead's other card copies, its timers, re-routing) run after the
# change commits. So that an error or a crash between the two cannot lose them, the change's own
# transaction records them as a pending timer of one of these kinds; whoever runs them settles
# it (bot/actions/effects.py). The sweep fires a marker still pending after EFFECTS_GRACE: the
# tap itself, or its retry from the inbox, normally gets there first.
EFFECT_KINDS = ("effects.claim", "effects.pass", "effects.advance")
EFFECTS_GRACE = timedelta(seconds=60)


def effects_key(action: str, lead_id: int, version: int) -> str:
    return f"effects:{action}:{lead_id}:v{version}"


def _record_effects(session: Any, action: str, row: Lead, now: datetime, payload: Mapping[str, Any]) -> None:
    session.add(Timer(key=effects_key(action, row.id, row.version), kind=f"effects.{action}", lead_id=row.id,
                      payload=dict(payload), due_at=now + EFFECTS_GRACE, state="pending", created_at=now))


@dataclass(frozen=True, slots=True)
class ClaimResult:
    outcome: str  # claimed | already_yours | taken | not_found | closed
    lead: dto.Lead | None
    owner_id: int | None = None


@dataclass(frozen=True, slots=True)
class AdvanceResult:
    outcome: str  # advanced | missing_evidence | not_found | not_next | stale
    lead: dto.Lead | None
    from_stage: str = ""
    to_stage: str = ""
    missing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    gates: tuple[str, ...] = field(default_factory=tuple)


def stages_from_settings(raw: Sequence[Mapping[str, Any]]) -> tuple[Stage, ...]:
    return tuple(Stage(name=str(s["name"]), gates=tuple(s.get("gates") or ())) for s in raw)


# Who held a lead (a claim, a pass) is not a follow-up with the customer: a rep offered a lead
# someone passed on must not read "1 次跟进".
NOT_FOLLOW_UPS = ("claim", "pass")

# The card's "seen before" line in one statement (built once: a statement keeps its cache key).
HISTORY_COUNTS = select(
    select(func.count()).select_from(Lead).where(Lead.customer_id == bindparam("customer_id"),
                                                 Lead.id != bindparam("exclude_lead")).scalar_subquery(),
    select(func.count()).select_from(Activity).where(Activity.customer_id == bindparam("customer_id"),
                                                     Activity.kind.not_in(NOT_FOLLOW_UPS)).scalar_subquery())


class LeadActions:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self.sessions = session_factory(engine)

    async def claim(self, lead_id: int, rep_id: int, actor: str, *, effects: bool = False) -> ClaimResult:
        """One conditional UPDATE decides the winner: among any number of simultaneous taps on
        any copy of the card, exactly one sees rowcount 1. `effects`: record the tap's
        after-effects as pending in the same transaction (EFFECT_KINDS)."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(Lead)
                .where(Lead.id == lead_id, Lead.claimed_at.is_(None), Lead.status.in_(OPEN_STATUSES),
                       or_(Lead.owner_id.is_(None), Lead.owner_id == rep_id))
                .values(owner_id=rep_id, claimed_at=now, status="claimed", last_activity_at=now,
                        updated_at=now, version=Lead.version + 1))
            row = await session.get(Lead, lead_id, populate_existing=True)
            if row is None:
                return ClaimResult("not_found", None)
            if result.rowcount == 1:
                session.add(Activity(lead_id=lead_id, customer_id=row.customer_id, kind="claim",
                                     actor=actor, at=now))
                session.add(AuditEntry(at=now, actor=actor, action="lead.claimed", subject_type="lead",
                                       subject_id=str(lead_id), data={"rep_id": rep_id}))
                if effects:
                    _record_effects(session, "claim", row, now, {"rep_id": rep_id})
                return ClaimResult("claimed", lead_dto(row), rep_id)
            if row.owner_id == rep_id and row.claimed_at is not None:
                return ClaimResult("already_yours", lead_dto(row), rep_id)
            if row.status not in OPEN_STATUSES:
                return ClaimResult("closed", lead_dto(row), row.owner_id)
            return ClaimResult("taken", lead_dto(row), row.owner_id)

    async def release(self, lead_id: int, rep_id: int, reason: str, actor: str, *,
                      effects: bool = False) -> dto.Lead | None:
        """Decline/pass: the rep gives an unclaimed offer back so routing can pick the next one."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(Lead).where(Lead.id == lead_id, Lead.owner_id == rep_id, Lead.claimed_at.is_(None))
                .values(owner_id=None, status="new", assigned_at=None, updated_at=now, version=Lead.version + 1))
            if result.rowcount != 1:
                return None
            row = await session.get(Lead, lead_id, populate_existing=True)
            # The activity names the passer whoever reports it: routing never offers them this
            # lead again (routing/engine.py).
            session.add(Activity(lead_id=lead_id, customer_id=row.customer_id, kind="pass", actor=rep_actor(rep_id),
                                 body=reason, at=now))
            session.add(AuditEntry(at=now, actor=actor, action="lead.passed", subject_type="lead",
                                   subject_id=str(lead_id), data={"rep_id": rep_id, "reason": reason}))
            if effects:
                _record_effects(session, "pass", row, now, {"rep_id": rep_id, "reason": reason})
            return lead_dto(row)

    async def to_pool(self, lead_id: int, actor: str) -> dto.Lead | None:
        """The first-touch ladder ran out: an untouched lead goes to its team's pool (公海)."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(Lead).where(Lead.id == lead_id, Lead.claimed_at.is_(None), Lead.status.in_(UNCLAIMED))
                .values(owner_id=None, status="pool", updated_at=now, version=Lead.version + 1))
            if result.rowcount != 1:
                return None
            row = await session.get(Lead, lead_id, populate_existing=True)
            session.add(AuditEntry(at=now, actor=actor, action="lead.to_pool", subject_type="lead",
                                   subject_id=str(lead_id), data={}))
            return lead_dto(row)

    async def reassign(self, lead_id: int, to_rep_id: int, actor: str, reason: str = "") -> dto.Lead | None:
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            row = await session.get(Lead, lead_id, with_for_update=True)
            if row is None or row.status not in OPEN_STATUSES:
                return None
            previous = row.owner_id
            row.owner_id, row.claimed_at, row.status = to_rep_id, None, "assigned"
            row.assigned_at = row.updated_at = now
            row.version += 1
            session.add(AuditEntry(at=now, actor=actor, action="lead.reassigned", subject_type="lead",
                                   subject_id=str(lead_id),
                                   data={"from": previous, "to": to_rep_id, "reason": reason}))
            return lead_dto(row)

    async def record_evidence(self, lead_id: int, gate: str, value: str, actor: str) -> None:
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            row = await session.get(Lead, lead_id)
            if row is None:
                raise LookupError(f"no lead {lead_id}")
            session.add(Activity(lead_id=lead_id, customer_id=row.customer_id, kind="evidence", actor=actor,
                                 body=value, data={"gate": gate}, at=now))
            row.last_activity_at = now

    async def evidence(self, lead_id: int) -> dict[str, str]:
        async with self.sessions() as session:
            rows = (await session.execute(select(Activity).where(
                Activity.lead_id == lead_id, Activity.kind == "evidence").order_by(Activity.id))).scalars()
            return {r.data.get("gate", ""): r.body for r in rows}

    async def advance(self, lead_id: int, stages: Sequence[Stage], actor: str, *,
                      expected_stage: str | None = None, evidence: Mapping[str, str] | None = None,
                      effects_for: int | None = None) -> AdvanceResult:
        """Moves the lead to the next stage if its gates are met. `expected_stage` is the stage
        the card showed: a stale card (or a double tap) does not advance twice."""
        now = self.clock.now()
        for gate, value in (evidence or {}).items():
            if value:
                await self.record_evidence(lead_id, gate, value, actor)
        have = await self.evidence(lead_id)
        names = [s.name for s in stages]
        async with self.sessions() as session, session.begin():
            row = await session.get(Lead, lead_id, with_for_update=True)
            if row is None:
                return AdvanceResult("not_found", None)
            current = row.stage or ""
            if expected_stage is not None and expected_stage != current:
                return AdvanceResult("stale", lead_dto(row), current, current)
            index = names.index(current) + 1 if current in names else 0
            if index >= len(stages):
                return AdvanceResult("not_next", lead_dto(row), current, current)
            target = stages[index]
            missing = tuple(g for g in target.gates if not have.get(g))
            if missing:
                return AdvanceResult("missing_evidence", lead_dto(row), current, target.name, missing)
            row.stage, row.stage_entered_at, row.last_activity_at, row.updated_at = target.name, now, now, now
            if row.first_contact_at is None:
                row.first_contact_at = now  # a stage advance counts as first contact
            row.version += 1
            session.add(StageHistory(lead_id=lead_id, from_stage=current, to_stage=target.name, actor=actor,
                                     evidence={g: have.get(g, "") for g in target.gates}, at=now))
            session.add(AuditEntry(at=now, actor=actor, action="lead.stage_advanced", subject_type="lead",
                                   subject_id=str(lead_id), data={"from": current, "to": target.name}))
            if effects_for is not None:
                _record_effects(session, "advance", row, now, {"rep_id": effects_for, "from": current,
                                                               "to": target.name})
            return AdvanceResult("advanced", lead_dto(row), current, target.name)

    async def first_contact(self, lead_id: int, actor: str, how: str) -> bool:
        """Marks the first contact once; True when this call was the first."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            result = await session.execute(update(Lead).where(Lead.id == lead_id, Lead.first_contact_at.is_(None))
                                           .values(first_contact_at=now, last_activity_at=now, updated_at=now,
                                                   version=Lead.version + 1))
            if result.rowcount == 1:
                row = await session.get(Lead, lead_id)
                session.add(Activity(lead_id=lead_id, customer_id=row.customer_id if row else None,
                                     kind="first_contact", actor=actor, body=how, at=now))
                session.add(AuditEntry(at=now, actor=actor, action="lead.first_contact", subject_type="lead",
                                       subject_id=str(lead_id), data={"how": how}))
            return result.rowcount == 1

    async def history_counts(self, customer_id: int | None, exclude_lead: int | None = None) -> tuple[int, int]:
        """(earlier leads, activities) of a customer, for the card's "seen before" line."""
        if customer_id is None:
            return 0, 0
        async with self.engine.connect() as conn:
            leads, acts = (await conn.execute(HISTORY_COUNTS, {"customer_id": customer_id,
                                                               "exclude_lead": exclude_lead or 0})).one()
        return int(leads), int(acts)

    async def rep_names(self, rep_ids: Sequence[int]) -> dict[int, str]:
        if not rep_ids:
            return {}
        async with self.sessions() as session:
            rows = (await session.execute(select(Rep.id, Rep.name).where(Rep.id.in_(list(rep_ids))))).all()
            return {i: n for i, n in rows}
