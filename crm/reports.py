"""Read-only queries for the manager digest and the scheduler's scans. Returns plain DTOs.

Open vs closed: store/lead_status.py (a lead whose status is in CLOSED is done with;
everything else is open).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Mapping, Sequence

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.lead_status import CLOSED as CLOSED_STATUSES
from store.models import Lead, Rep, Team
from leadbot.clock import utc


@dataclass(frozen=True, slots=True)
class FirstResponse:
    lead_id: int
    owner_id: int | None
    assigned_at: datetime
    responded_at: datetime  # the earlier of claim and first contact


@dataclass(frozen=True, slots=True)
class TeamRef:
    id: int
    name: str
    manager_id: int | None


@dataclass(frozen=True, slots=True)
class DigestRows:
    new: int
    claimed: int
    overdue: int
    silent: int
    stuck_by_stage: Mapping[str, int]
    responses: Sequence[FirstResponse]
    rep_names: Mapping[int, str]


def _open() -> object:
    return Lead.status.not_in(CLOSED_STATUSES)


class ReportStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def teams(self) -> list[TeamRef]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(Team.id, Team.name, Team.manager_id).order_by(Team.id))).all()
        return [TeamRef(*r) for r in rows]

    async def digest_rows(self, *, start: datetime, end: datetime, overdue_before: datetime,
                          silent_before: datetime, stuck_before: Mapping[str, datetime],
                          stuck_default_before: datetime | None, team_id: int | None = None) -> DigestRows:
        """Counts for [start, end): new leads, claims, first responses; and as of `end`: open
        untouched leads assigned before `overdue_before`, open leads silent since `silent_before`,
        open leads per stage entered before that stage's cutoff (stuck_before, else the default;
        None turns the default off)."""
        team = [Lead.team_id == team_id] if team_id is not None else []
        async with self.engine.connect() as conn:
            async def count(*cond: object) -> int:
                return int((await conn.execute(select(func.count()).select_from(Lead)
                                               .where(*team, *cond))).scalar() or 0)

            new = await count(Lead.created_at >= start, Lead.created_at < end)
            claimed = await count(Lead.claimed_at >= start, Lead.claimed_at < end)
            overdue = await count(_open(), Lead.assigned_at.is_not(None), Lead.assigned_at <= overdue_before,
                                  Lead.claimed_at.is_(None), Lead.first_contact_at.is_(None))
            silent = await count(_open(), func.coalesce(Lead.last_activity_at, Lead.created_at) <= silent_before)
            stuck: dict[str, int] = {}
            for stage, cutoff in stuck_before.items():
                n = await count(_open(), Lead.stage == stage, Lead.stage_entered_at <= cutoff)
                if n:
                    stuck[stage] = n
            if stuck_default_before is not None:
                query = (select(Lead.stage, func.count()).where(
                    *team, _open(), Lead.stage != "", Lead.stage_entered_at <= stuck_default_before,
                    Lead.stage.not_in(list(stuck_before) or [""])).group_by(Lead.stage))
                for stage, n in (await conn.execute(query)).all():
                    stuck[stage] = stuck.get(stage, 0) + int(n)
            in_window = or_(and_(Lead.claimed_at >= start, Lead.claimed_at < end),
                            and_(Lead.first_contact_at >= start, Lead.first_contact_at < end))
            rows = (await conn.execute(select(Lead.id, Lead.owner_id, Lead.assigned_at, Lead.claimed_at,
                                              Lead.first_contact_at)
                                       .where(*team, in_window, Lead.assigned_at.is_not(None)))).all()
            responses = []
            for lead_id, owner_id, assigned_at, claimed_at, contact_at in rows:
                first = min(utc(t) for t in (claimed_at, contact_at) if t is not None)
                # Only leads whose *first* response fell in the window (a later contact after an
                # earlier claim is not a first response).
                if start <= first < end:
                    responses.append(FirstResponse(lead_id, owner_id, utc(assigned_at), first))
            rep_ids = sorted({r.owner_id for r in responses if r.owner_id is not None})
            names: dict[int, str] = {}
            if rep_ids:
                names = {i: n for i, n in (await conn.execute(select(Rep.id, Rep.name)
                                                                 .where(Rep.id.in_(rep_ids)))).all()}
        return DigestRows(new, claimed, overdue, silent, stuck, responses, names)
