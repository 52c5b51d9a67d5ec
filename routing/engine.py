"""Router: assigns leads to reps and writes down why.

One transaction per decision: read the lead (FOR UPDATE on PostgreSQL), the candidates and their
loads and the round-robin pointer, decide (routing.decide, pure), then write the
pointer under a version check, the lead under a conditional update (its version, and no owner
for a first assignment) and the routing_decisions row. A lost race rolls everything back and
retries from fresh reads, so two processes never give one lead two owners and the pointer never
counts a decision that did not happen.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

import structlog
from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from store import dto
from store.actors import rep_of_actor
from store.db import session_factory
from store.kv import KeyValueStore
from store.lead_status import CLOSED as CLOSED_STATUSES, UNCLAIMED
from store.models import Activity, AuditEntry, Customer, Lead, Rep, RoutingDecision, RoutingState, Team
from routing.decide import Candidate, Context, Decision, Plan, RepSnapshot, plan
from routing.duty import in_turn, read_override, turn
from leadbot.workcal import WorkCalendar, calendar_of
from routing.rules import Rule, RuleSet, parse_rules
from store.captures import watches
from leadbot.clock import Clock
from leadbot.settings import AssignmentSettings, CalendarSettings, ConfigError, DutySettings

log = structlog.get_logger(__name__)

# Decisions that hand a lead to a rep count towards that rep's daily cap.
RECEIVING_OUTCOMES = ("sticky", "assigned", "backup", "manager", "on_duty")
MAX_ATTEMPTS = 25


class RoutingConflict(RuntimeError):
    """Gave up after repeated lost races (only under pathological contention)."""


class _Retry(Exception):
    pass


@dataclass(frozen=True, slots=True)
class StreakEvent:
    """A rep left or re-entered the priority rotation; tell ``manager_id``."""

    kind: str  # sidelined | reinstated
    rep_id: int
    rep_name: str
    manager_id: int | None
    team_id: int | None
    miss_streak: int
    ontime_streak: int
    actor: str = "system"


# What a routing snapshot reads of a rep: the columns routing needs (no ORM objects, no JSON
# columns) and the rep's two loads, counted by correlated subqueries over covering indexes
# (ix_leads_owner_status, ix_routing_decisions_load), so a team of 150 is one statement.
SNAPSHOT_COLUMNS = (Rep.id, Rep.name, Rep.team_id, Rep.role, Rep.status, Rep.weight, Rep.capacity, Rep.daily_cap,
                    Rep.working_hours, Rep.sidelined, Rep.last_active_at)
_leads, _decisions = Lead.__table__, RoutingDecision.__table__
_OPEN_LEADS = (select(func.count()).select_from(_leads)
               .where(_leads.c.owner_id == Rep.id, _leads.c.status.not_in(CLOSED_STATUSES))
               .correlate(Rep).scalar_subquery().label("open_leads"))
_TODAY = (select(func.count()).select_from(_decisions)
          .where(_decisions.c.chosen_rep_id == Rep.id, _decisions.c.at >= bindparam("day_start"),
                 _decisions.c.outcome.in_(RECEIVING_OUTCOMES))
          .correlate(Rep).scalar_subquery().label("today"))
_WITH_LOADS = select(*SNAPSHOT_COLUMNS, _OPEN_LEADS, _TODAY)
# Statements built once: a statement object keeps its cache key, so running it again skips
# building and keying it (most of a statement's cost in SQLAlchemy).
MEMBERS = _WITH_LOADS.where(Rep.role == "rep").order_by(Rep.id)
TEAM_MEMBERS = MEMBERS.where(Rep.team_id == bindparam("team_id"))
REP_BY_ID = _WITH_LOADS.where(Rep.id == bindparam("rep_id"))
REP_BY_EXTERNAL_ID = _WITH_LOADS.where(Rep.external_id == bindparam("external_id"))
# The lead with its customer's first merge hop and owner (a lead usually has a customer).
LEAD_FOR_UPDATE = (select(Lead.__table__, Customer.merged_into.label("customer_merged_into"),
                          Customer.owner_id.label("customer_owner_id"))
                   .outerjoin(Customer, Customer.id == Lead.customer_id)
                   .where(Lead.id == bindparam("lead_id")).with_for_update(of=Lead.__table__))
# The reps who passed (放弃) a lead: its pass activities name them (crm/leads.py release). A
# lead is never routed back to someone who refused it, sticky ownership included.
PASSED_BY = select(Activity.actor).where(Activity.lead_id == bindparam("lead_id"), Activity.kind == "pass")
CUSTOMER_OWNER = select(Customer.merged_into, Customer.owner_id).where(Customer.id == bindparam("customer_id"))
TEAM_BY_NAME = select(Team.id, Team.manager_id).where(Team.name == bindparam("name"))
POINTER_FOR_UPDATE = (select(RoutingState.data, RoutingState.version)
                      .where(RoutingState.key == bindparam("pointer_key")).with_for_update())
INSERT_DECISION = insert(RoutingDecision.__table__).returning(RoutingDecision.__table__.c.id)
POINTER_UPDATE = (update(RoutingState)
                  .where(RoutingState.key == bindparam("pointer_key"), RoutingState.version == bindparam("seen"))
                  .values(data=bindparam("pointer"), version=bindparam("seen") + 1)
                  .execution_options(synchronize_session=False))


class _Snapshots:
    """RepSnapshots by their row: between two decisions of a team only the chosen rep's loads
    change, so building 150 snapshots per decision was mostly rebuilding the same ones."""

    LIMIT = 20_000

    def __init__(self) -> None:
        self._by_row: dict[tuple[Any, ...], RepSnapshot] = {}

    def __call__(self, row: Any) -> RepSnapshot:
        key = tuple(row)
        snap = self._by_row.get(key)
        if snap is None:
            if len(self._by_row) >= self.LIMIT:
                self._by_row.clear()
            snap = self._by_row[key] = _snapshot(row)
        return snap


def _snapshot(rep: Any) -> RepSnapshot:
    """`rep`: a row of SNAPSHOT_COLUMNS with its loads (open_leads, today)."""
    return RepSnapshot(id=rep.id, name=rep.name, team_id=rep.team_id, role=rep.role, status=rep.status,
                       weight=float(rep.weight), capacity=int(rep.capacity or 0),
                       daily_cap=int(rep.daily_cap or 0), working_hours=rep.working_hours or "",
                       sidelined=bool(rep.sidelined), last_active_at=rep.last_active_at,
                       open_leads=int(rep.open_leads or 0), today=int(rep.today or 0))


def decision_from_row(row: RoutingDecision, *, applied: bool = False) -> Decision:
    return Decision(lead_id=row.lead_id, outcome=row.outcome or ("assigned" if row.chosen_rep_id else "pool"),
                    rep_id=row.chosen_rep_id, team_id=row.team_id, rule=row.rule,
                    rule_version=row.rule_version, strategy=row.strategy,
                    candidates=tuple(Candidate.from_json(c) for c in row.candidates or ()),
                    reason=row.reason, decision_id=row.id, applied=applied, at=row.at,
                    previous_owner_id=row.previous_owner_id, until=_instant((row.data or {}).get("until")),
                    expected=str((row.data or {}).get("expected", "")))


def _instant(value: Any) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(str(value))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


class Router:
    """The assignment engine. Construct once per process (create_app) and share."""

    def __init__(self, engine: AsyncEngine, assignment: AssignmentSettings, calendar: CalendarSettings,
                 clock: Clock, *, duty: DutySettings | None = None) -> None:
        self.engine = engine
        self.settings = assignment
        self.duty = duty or DutySettings()
        self.rules: RuleSet = parse_rules(assignment)
        try:  # the one calendar (leadbot.workcal), as [calendar] validation already built it
            self.calendar = WorkCalendar.from_settings(calendar)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.calendars = calendar  # a team's own calendar: calendar_of(self.calendars, team)
        self.clock = clock
        self.sessions = session_factory(engine)
        self._snapshots = _Snapshots()
        self._rules_since: dict[str, str] | None = None
        self._rules_since_lock = asyncio.Lock()

    # ---- public API --------------------------------------------------------------------------

    async def assign(self, lead_id: int, *, from_pool: bool = False, trigger: str = "") -> Decision:
        """Routes a new lead and sets its owner. Idempotent: a lead that already has an owner (or
        waits in the pool, unless ``from_pool``) is left alone and the decision on record comes
        back with ``applied=False``. Concurrent calls for one lead give one owner. A lead that
        waits for the working window ("waiting") is routed again only by the window's timer
        (``trigger="window"``)."""
        return await self._route(lead_id, mode="assign", exclude=(),
                                 trigger=trigger or ("from_pool" if from_pool else "new"))

    async def next_candidate(self, lead_id: int, exclude: Iterable[int] = (), reason: str = "declined") -> Decision:
        """Moves a lead on from its current owner (decline/pass, SLA reassignment): routes it
        again with the current owner and ``exclude`` left out, and applies the result (another
        rep, or the pool). ``reason`` is recorded (declined, sla_reassign, ...)."""
        return await self._route(lead_id, mode="next", exclude=tuple(exclude), trigger=reason)

    async def reassign_escalated(self, lead_id: int, owner_id: int | None, reason: str = "manager") -> Decision:
        """A manager's reassignment of an escalated lead, decided on the lead as it is now: it
        moves on from ``owner_id`` (its owner when it escalated) only while that rep still has
        it unclaimed; a lead claimed, moved or closed meanwhile is left as it is (not applied)."""
        return await self._route(lead_id, mode="escalated", exclude=(owner_id,) if owner_id else (),
                                 trigger=reason, expected_owner=owner_id)

    async def reroute_open_leads(self, rep_id: int) -> list[tuple[dto.Lead, Decision]]:
        """A rep left: each open lead they own is routed again without them. Returns (lead after,
        decision) pairs so the caller notifies the new owners and the manager and updates the
        old cards. Leads that changed hands meanwhile are skipped."""
        async with self.sessions() as session:
            ids = (await session.execute(
                select(Lead.id).where(Lead.owner_id == rep_id, Lead.status.not_in(CLOSED_STATUSES))
                .order_by(Lead.id))).scalars().all()
        out: list[tuple[dto.Lead, Decision]] = []
        for lead_id in ids:
            decision = await self._route(lead_id, mode="reroute", exclude=(rep_id,), trigger="rep_left",
                                         expected_owner=rep_id)
            if decision.applied:
                lead = await self._lead_dto(lead_id)
                if lead is not None:
                    out.append((lead, decision))
        return out

    async def last_decision(self, lead_id: int) -> Decision | None:
        async with self.sessions() as session:
            row = await self._last_row(session, lead_id)
            return decision_from_row(row) if row else None

    async def record_first_touch(self, rep_id: int, on_time: bool) -> StreakEvent | None:
        """Counts a first-touch SLA result (call once per lead). After ``miss_streak_limit``
        misses in a row the rep leaves the priority rotation (event "sidelined": tell the
        manager); after ``miss_streak_recover`` on-time responses while sidelined they return
        (event "reinstated")."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            rep = (await session.execute(select(Rep).where(Rep.id == rep_id).with_for_update())).scalar_one_or_none()
            if rep is None:
                raise LookupError(f"rep {rep_id} not found")
            event_kind = None
            if on_time:
                rep.miss_streak = 0
                rep.ontime_streak = (rep.ontime_streak or 0) + 1
                if rep.sidelined and rep.ontime_streak >= self.settings.miss_streak_recover:
                    rep.sidelined = False
                    rep.ontime_streak = 0
                    event_kind = "reinstated"
            else:
                rep.ontime_streak = 0
                rep.miss_streak = (rep.miss_streak or 0) + 1
                if not rep.sidelined and rep.miss_streak >= self.settings.miss_streak_limit:
                    rep.sidelined = True
                    event_kind = "sidelined"
            rep.updated_at = now
            if event_kind is None:
                return None
            return await self._streak_event(session, rep, event_kind, "system", now)

    async def reinstate(self, rep_id: int, actor: str) -> StreakEvent | None:
        """A manager's tap brings a sidelined rep back into rotation (None if they were not out)."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            rep = (await session.execute(select(Rep).where(Rep.id == rep_id).with_for_update())).scalar_one_or_none()
            if rep is None:
                raise LookupError(f"rep {rep_id} not found")
            if not rep.sidelined:
                return None
            rep.sidelined = False
            rep.miss_streak = 0
            rep.ontime_streak = 0
            rep.updated_at = now
            return await self._streak_event(session, rep, "reinstated", actor, now)

    # ---- internals ---------------------------------------------------------------------------

    async def _streak_event(self, session: AsyncSession, rep: Rep, kind: str, actor: str,
                            now: datetime) -> StreakEvent:
        manager_id = rep.manager_id
        if manager_id is None and rep.team_id is not None:
            manager_id = (await session.execute(
                select(Team.manager_id).where(Team.id == rep.team_id))).scalar_one_or_none()
        event = StreakEvent(kind=kind, rep_id=rep.id, rep_name=rep.name, manager_id=manager_id,
                            team_id=rep.team_id, miss_streak=rep.miss_streak, ontime_streak=rep.ontime_streak,
                            actor=actor)
        session.add(AuditEntry(at=now, actor=actor, action=f"rep.{kind}", subject_type="rep",
                               subject_id=str(rep.id), data={"manager_id": manager_id,
                                                             "miss_streak": rep.miss_streak}))
        log.info("routing.rep_" + kind, rep_id=rep.id, manager_id=manager_id, actor=actor)
        return event

    async def _lead_dto(self, lead_id: int) -> dto.Lead | None:
        from store.rows import lead_dto

        async with self.sessions() as session:
            row = await session.get(Lead, lead_id)
            return lead_dto(row) if row else None

    async def _last_row(self, session: AsyncSession, lead_id: int) -> RoutingDecision | None:
        return (await session.execute(
            select(RoutingDecision).where(RoutingDecision.lead_id == lead_id)
            .order_by(RoutingDecision.id.desc()).limit(1))).scalar_one_or_none()

    async def _route(self, lead_id: int, *, mode: str, exclude: Sequence[int], trigger: str,
                     expected_owner: int | None = None) -> Decision:
        for attempt in range(MAX_ATTEMPTS):
            try:
                return await self._route_once(lead_id, mode=mode, exclude=exclude, trigger=trigger,
                                              expected_owner=expected_owner)
            except (_Retry, IntegrityError):
                # Someone else moved the pointer or the lead first: decide again on fresh reads.
                await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise RoutingConflict(f"lead {lead_id}: gave up after {MAX_ATTEMPTS} conflicting attempts")

    async def _not_applied(self, session: AsyncSession, lead: Any, outcome: str) -> Decision:
        row = await self._last_row(session, lead.id)
        if row is not None and (row.chosen_rep_id == lead.owner_id or outcome == "not_assignable"):
            return decision_from_row(row, applied=False)
        return Decision(lead_id=lead.id, outcome=outcome, rep_id=lead.owner_id, team_id=lead.team_id,
                        rule="", rule_version="", strategy="", applied=False,
                        reason=f"lead is {lead.status}" + (f", owned by rep {lead.owner_id}" if lead.owner_id else ""))

    async def rules_since(self) -> dict[str, str]:
        """rule version -> when leadbot first ran with the rule in that form (ISO time): what
        `explain` shows as the rule's change date. Kept in kv so every process and restart agrees
        on the first one; read once per Router, outside any decision's transaction."""
        async with self._rules_since_lock:
            if self._rules_since is None:
                kv, now = KeyValueStore(self.engine, self.clock), self.clock.now().isoformat()
                self._rules_since = {r.version: await kv.setdefault(f"rule_since:{r.version}", now)
                                     for r in (*self.rules.rules, self.rules.default)}
        return self._rules_since

    async def _route_once(self, lead_id: int, *, mode: str, exclude: Sequence[int], trigger: str,
                          expected_owner: int | None) -> Decision:
        since = await self.rules_since()
        now = self.clock.now()
        async with self.sessions() as session:
            async with session.begin():
                # Core statements on the session's connection (no ORM work per statement); the
                # session stays for the decision row when CRM webhooks watch its flushes.
                conn = await session.connection()
                lead = (await conn.execute(LEAD_FOR_UPDATE, {"lead_id": lead_id})).one_or_none()
                if lead is None:
                    raise LookupError(f"lead {lead_id} not found")
                if lead.status in CLOSED_STATUSES:
                    return await self._not_applied(session, lead, "not_assignable")
                if mode == "assign":
                    if lead.owner_id is not None:
                        return await self._not_applied(session, lead, "already_assigned")
                    if lead.status == "pool" and trigger != "from_pool":
                        return await self._not_applied(session, lead, "pool")
                    if lead.status == "waiting" and trigger != "window":
                        return await self._not_applied(session, lead, "deferred")
                if mode == "reroute" and lead.owner_id != expected_owner:
                    return await self._not_applied(session, lead, "already_assigned")
                if mode == "escalated" and (lead.owner_id != expected_owner or lead.claimed_at is not None
                                            or lead.status not in UNCLAIMED):
                    # Read under the row lock (and the update is fenced on the version), so a
                    # claim that lands first wins and the reassignment does nothing.
                    return await self._not_applied(session, lead, "handled")

                previous_owner = lead.owner_id
                # A new lead has no passes yet: one statement saved on the hot path.
                passed = set() if trigger == "new" else await _passed_by(conn, lead.id)
                excluded = frozenset(set(exclude) | passed | ({previous_owner} if previous_owner else set()))
                p, state, meta = await self._plan(conn, lead, excluded, now)
                d = p.decision

                if p.pointer_changed and p.pointer is not None:
                    await self._save_pointer(conn, meta["pointer_key"], state, p.pointer)

                values: dict[str, Any] = {"version": Lead.version + 1, "updated_at": now}
                if d.outcome in ("pool", "deferred"):
                    # deferred: "waiting" until the window opens (a timer routes it then), offered
                    # to nobody meanwhile.
                    values.update(owner_id=None, status="pool" if d.outcome == "pool" else "waiting",
                                  team_id=d.team_id if d.team_id is not None else Lead.team_id)
                else:
                    # A rule without a team still leaves the lead in its owner's team, so team
                    # views (pool, digest, escalation) find it.
                    team_of_owner = select(Rep.team_id).where(Rep.id == d.rep_id).scalar_subquery()
                    values.update(owner_id=d.rep_id, status="assigned", assigned_at=now,
                                  team_id=d.team_id if d.team_id is not None else team_of_owner)
                if previous_owner is not None and d.rep_id != previous_owner:
                    values["claimed_at"] = None
                cond = [Lead.id == lead.id, Lead.version == lead.version]
                cond.append(Lead.owner_id.is_(None) if previous_owner is None else Lead.owner_id == previous_owner)
                result = await conn.execute(update(Lead).where(*cond).values(**values))
                if result.rowcount != 1:
                    raise _Retry()

                if lead.customer_id and d.rep_id is not None and d.outcome != "sticky":
                    # The customer follows the lead to its new owner when it had none, or when
                    # it belonged to the rep this lead was taken from.
                    # A rep who passed this lead gave up the customer it brought them too.
                    owners = [Customer.owner_id.is_(None)]
                    if previous_owner is not None or passed:
                        owners.append(Customer.owner_id.in_(passed | ({previous_owner} if previous_owner else set())))
                    await conn.execute(update(Customer).where(Customer.id == meta["customer_id"], or_(*owners))
                                       .values(owner_id=d.rep_id, updated_at=now))

                data = {"trigger": trigger, "matched": meta["matched"], "conditions": meta["conditions"],
                        "team": meta["team_name"],
                        "excluded": sorted(excluded), "customer_id": meta["customer_id"]}
                for flag in ("team_missing", "pool_rule", "urgent"):
                    if meta.get(flag):
                        data[flag] = True
                if since.get(d.rule_version):
                    data["rule_since"] = since[d.rule_version]
                if d.until is not None:
                    data["until"] = d.until.isoformat()
                    data["expected"] = d.expected
                if previous_owner is not None:
                    data["previous_owner_name"] = meta.get("previous_owner_name", "")
                if p.pointer_changed:
                    data["pointer_key"] = meta["pointer_key"]
                    data["pointer_before"] = meta["pointer_before"]
                record = dict(lead_id=lead.id, rule=d.rule, rule_version=d.rule_version, strategy=d.strategy,
                              candidates=[c.to_json() for c in d.candidates], chosen_rep_id=d.rep_id,
                              reason=d.reason, at=now, outcome=d.outcome, team_id=d.team_id,
                              previous_owner_id=previous_owner, data=data)
                # routing_decisions is the audit trail of routing; no duplicate audit_log row.
                if watches(self.engine):  # CRM webhooks turn flushed decision rows into events
                    row = RoutingDecision(**record)
                    session.add(row)
                    await session.flush()
                    decision_id = row.id
                else:
                    decision_id = (await conn.execute(INSERT_DECISION, record)).scalar_one()
        log.info("routing.decided", lead_id=lead_id, outcome=d.outcome, rep_id=d.rep_id, rule=d.rule,
                 trigger=trigger)
        return Decision(lead_id=d.lead_id, outcome=d.outcome, rep_id=d.rep_id, team_id=d.team_id,
                        rule=d.rule, rule_version=d.rule_version, strategy=d.strategy,
                        candidates=d.candidates, reason=d.reason, decision_id=decision_id, applied=True,
                        at=now, previous_owner_id=previous_owner, until=d.until, expected=d.expected)

    async def _plan(self, conn: AsyncConnection, lead: Any, excluded: frozenset[int],
                    now: datetime) -> tuple[Plan, dict[str, Any] | None, dict[str, Any]]:
        meta: dict[str, Any] = {"customer_id": None, "team_name": "", "pointer_key": "", "pointer_before": {}}
        loads = {"day_start": self.calendar.midnight(now)}

        async def rep(statement: Any, **params: Any) -> Any:
            return (await conn.execute(statement, {**loads, **params})).one_or_none()

        owner_row: Any = None
        if lead.customer_id:
            customer_id, owner_id = lead.customer_id, lead.customer_owner_id
            if lead.customer_merged_into:
                customer_id, owner_id = await self._customer_owner(conn, lead.customer_merged_into)
            meta["customer_id"] = customer_id
            if owner_id is not None:
                owner_row = await rep(REP_BY_ID, rep_id=owner_id)

        rule: Rule = self.rules.select(lead)
        meta["matched"] = [c.describe() for c in rule.conditions]
        # The same conditions as data, so an explanation can word them (routing/explain_text.py).
        meta["conditions"] = [{"attribute": c.attribute, "values": list(c.values), "min": c.min, "max": c.max}
                              for c in rule.conditions]
        meta["pool_rule"] = bool(rule.pool)
        team: Any = None
        if rule.target_team:
            team = (await conn.execute(TEAM_BY_NAME, {"name": rule.target_team})).one_or_none()
            meta["team_name"] = rule.target_team
            if team is None:
                meta["team_missing"] = True
        members: list[Any] = []
        if not rule.pool and (team is not None or not rule.target_team):
            if team is not None:
                members = list((await conn.execute(TEAM_MEMBERS, {**loads, "team_id": team.id})).all())
            else:
                members = list((await conn.execute(MEMBERS, loads)).all())

        backup_row: Any = None
        backup_missing = False
        if rule.backup:
            backup_row = await rep(REP_BY_EXTERNAL_ID, external_id=rule.backup)
            if backup_row is None and rule.backup.isdigit():
                backup_row = await rep(REP_BY_ID, rep_id=int(rule.backup))
            backup_missing = backup_row is None
        manager_row: Any = None
        if team is not None and team.manager_id is not None:
            manager_row = await rep(REP_BY_ID, rep_id=team.manager_id)

        prev_owner = lead.owner_id
        if prev_owner is not None:
            prev = (await conn.execute(select(Rep.name).where(Rep.id == prev_owner))).scalar_one_or_none()
            meta["previous_owner_name"] = prev or ""

        pointer: dict[str, int] = {}
        state: dict[str, Any] | None = None
        if rule.strategy == "weighted_round_robin" and members:
            key = f"wrr:{rule.name}:{team.id if team is not None else '*'}"
            meta["pointer_key"] = key
            found = (await conn.execute(POINTER_FOR_UPDATE, {"pointer_key": key})).one_or_none()
            if found is not None:
                state = {"version": found.version}
                pointer = {str(k): int(v) for k, v in (found.data or {}).get("current", {}).items()}
            meta["pointer_before"] = dict(pointer)

        calendar = calendar_of(self.calendars, rule.target_team or "")
        ctx = Context(now=now, calendar=calendar,
                      active_within_minutes=self.settings.active_within_minutes, exclude=excluded)
        snapshot = self._snapshots
        snap = lambda r: None if r is None else snapshot(r)  # noqa: E731
        duty: list[RepSnapshot] = []
        meta["urgent"] = rule.urgent
        if not rule.pool and not calendar.is_working(now):
            # Off hours: the team's on-duty rotation (a manager's override, else [duty]), in turn.
            team_key = rule.target_team or ""
            override = await read_override(conn, team_key)
            names = override.reps if override is not None else self.duty.rotation(team_key)
            for name in in_turn(names, turn(calendar, now, len(names))):
                row = await rep(REP_BY_EXTERNAL_ID, external_id=name)
                if row is None and name.isdigit():
                    row = await rep(REP_BY_ID, rep_id=int(name))
                if row is not None:
                    duty.append(snapshot(row))
        args = dict(lead_id=lead.id, rule=rule, team_id=team.id if team is not None else None,
                    team_name=meta["team_name"], members=[snapshot(r) for r in members],
                    owner=snap(owner_row), backup=snap(backup_row), backup_missing=backup_missing,
                    manager=snap(manager_row), pointer=pointer, previous_owner_id=prev_owner,
                    duty=duty, duty_applies=rule.urgent or not self.duty.only_urgent)
        result = plan(ctx=ctx, **args)
        d = result.decision
        if d.outcome == "deferred" and d.until is not None:
            # Who would take it when the window opens, as far as can be told now (loads and the
            # rotation may change by then): explain and the manager's notice name them.
            later = plan(ctx=Context(now=d.until, calendar=calendar, exclude=excluded), **args).decision
            if later.rep_id is not None:
                result = replace(result, decision=replace(d, expected=later.rep_name))
        return result, state, meta

    async def _customer_owner(self, conn: AsyncConnection, customer_id: int) -> tuple[int, int | None]:
        """(surviving customer id, its owner) following merge tombstones."""
        seen: set[int] = set()
        while customer_id not in seen:
            seen.add(customer_id)
            row = (await conn.execute(CUSTOMER_OWNER, {"customer_id": customer_id})).one_or_none()
            if row is None:
                return customer_id, None
            merged_into, owner_id = row
            if not merged_into:
                return customer_id, owner_id
            customer_id = merged_into
        return customer_id, None

    async def _save_pointer(self, conn: AsyncConnection, key: str, state: dict[str, Any] | None,
                            pointer: dict[str, int]) -> None:
        data = {"current": pointer}
        if state is None:
            # A concurrent first decision inserting the same key raises IntegrityError -> retry.
            await conn.execute(insert(RoutingState).values(key=key, data=data, version=1))
            return
        result = await conn.execute(POINTER_UPDATE, {"pointer_key": key, "seen": state["version"], "pointer": data})
        if result.rowcount != 1:
            raise _Retry()


async def _passed_by(conn: AsyncConnection, lead_id: int) -> set[int]:
    reps = {rep_of_actor(actor) for (actor,) in await conn.execute(PASSED_BY, {"lead_id": lead_id})}
    return {rep for rep in reps if rep is not None}
