"""The routing decision as a pure function: lead + rule + rep snapshots + pointer state + now
-> decision + next pointer state. No I/O and no clock of its own, so the same inputs always give
the same decision (the engine persists what goes in and what comes out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping, Sequence

from leadbot.workcal import WorkCalendar
from routing.rules import Rule

# Why a rep was passed over; explain() has words for each.
SKIP_REASONS = ("excluded", "left", "on_leave", "not_active", "sidelined", "outside_hours",
                "inactive", "over_capacity", "daily_cap", "no_weight", "not_found")
# What a decision did. The first five are routing outcomes; the last two are answers of assign()
# for a lead that had already been handled (nothing written).
# on_duty: outside working hours, to the team's on-duty rep ([duty]); deferred: outside working
# hours with nobody on duty, the lead waits (status "waiting") and is routed when the next working
# window opens (Decision.until).
OUTCOMES = ("sticky", "assigned", "backup", "manager", "on_duty", "deferred", "pool", "already_assigned",
            "not_assignable")
WEIGHT_SCALE = 1000  # smooth WRR works on integers so pointer state is exact in JSON


@dataclass(frozen=True, slots=True)
class RepSnapshot:
    """What routing knows about one rep at decision time (loads are counted by the engine)."""

    id: int
    name: str
    team_id: int | None = None
    role: str = "rep"
    status: str = "active"
    weight: float = 1.0
    capacity: int = 0
    daily_cap: int = 0
    working_hours: str = ""
    sidelined: bool = False
    last_active_at: datetime | None = None
    open_leads: int = 0
    today: int = 0


@dataclass(frozen=True, slots=True)
class Candidate:
    rep_id: int
    name: str
    role: str  # member | owner | backup | manager
    score: float | None = None
    skip: str | None = None
    chosen: bool = False
    weight: float = 1.0
    open_leads: int = 0
    today: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rep_id": self.rep_id, "name": self.name, "role": self.role,
                               "weight": self.weight, "open": self.open_leads, "today": self.today}
        if self.score is not None:
            out["score"] = round(self.score, 6)
        if self.skip:
            out["skip"] = self.skip
        if self.chosen:
            out["chosen"] = True
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Candidate":
        return cls(rep_id=int(data["rep_id"]), name=str(data.get("name", "")),
                   role=str(data.get("role", "member")), score=data.get("score"),
                   skip=data.get("skip"), chosen=bool(data.get("chosen", False)),
                   weight=float(data.get("weight", 1.0)), open_leads=int(data.get("open", 0)),
                   today=int(data.get("today", 0)))


@dataclass(frozen=True, slots=True)
class Decision:
    """What the router decided for one lead. ``applied`` is False when assign() found the lead
    already handled: then nothing was written and this repeats the decision on record (if any)."""

    lead_id: int
    outcome: str
    rep_id: int | None
    team_id: int | None
    rule: str
    rule_version: str
    strategy: str
    candidates: tuple[Candidate, ...] = ()
    reason: str = ""
    decision_id: int | None = None
    applied: bool = True
    at: datetime | None = None
    previous_owner_id: int | None = None
    until: datetime | None = None  # deferred: when the lead is routed again (next working window)
    expected: str = ""  # deferred: who would take it then, as far as can be told now

    @property
    def pool(self) -> bool:
        """True: the lead waits in the team's pool; send the pool card to the team's group."""
        return self.outcome == "pool"

    @property
    def rep_name(self) -> str:
        for c in self.candidates:
            if c.chosen:
                return c.name
        return ""


@dataclass(frozen=True, slots=True)
class Plan:
    decision: Decision
    pointer: dict[str, int] | None = None  # new WRR pointer state to persist, if any
    pointer_changed: bool = False


@dataclass(frozen=True, slots=True)
class Context:
    now: datetime
    calendar: WorkCalendar
    active_within_minutes: int = 0
    exclude: frozenset[int] = field(default_factory=frozenset)
    # One decision asks "on the clock now?" for every member, nearly all with the same hours.
    _on_clock: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    def on_clock(self, rep_hours: str) -> bool:
        known = self._on_clock.get(rep_hours)
        if known is None:
            known = self._on_clock[rep_hours] = self.calendar.on_clock(self.now, rep_hours)
        return known


def skip_reason(rep: RepSnapshot, ctx: Context, *, rotation: bool = True, hours: bool = True) -> str | None:
    """First reason this rep cannot take a lead now, else None. Order matters for the audit:
    the most fundamental reason is the one recorded."""
    if rep.id in ctx.exclude:
        return "excluded"
    if rep.status == "left":
        return "left"
    if rep.status == "on_leave":
        return "on_leave"
    if rep.status != "active":
        return "not_active"
    if rotation and rep.sidelined:
        return "sidelined"
    if hours and not ctx.on_clock(rep.working_hours):
        return "outside_hours"
    if ctx.active_within_minutes > 0:
        if rep.last_active_at is None or \
                ctx.now - rep.last_active_at > timedelta(minutes=ctx.active_within_minutes):
            return "inactive"
    if rep.capacity > 0 and rep.open_leads >= rep.capacity:
        return "over_capacity"
    if rep.daily_cap > 0 and rep.today >= rep.daily_cap:
        return "daily_cap"
    if rotation and rep.weight <= 0:
        return "no_weight"
    return None


def _int_weight(rep: RepSnapshot) -> int:
    return max(1, round(rep.weight * WEIGHT_SCALE))


def choose(strategy: str, eligible: Sequence[RepSnapshot], pointer: Mapping[str, int],
           roster: Iterable[int]) -> tuple[int, dict[int, float], dict[str, int]]:
    """(winner id, score per eligible rep, next pointer state). Ties break on weight, then the
    lower rep id, so the choice never depends on row order."""
    if strategy == "weighted_round_robin":
        # Smooth weighted round robin (as in nginx): every eligible rep earns its weight, the
        # richest wins and pays back the total. Exact shares, well interleaved, and the whole
        # state is one integer per rep, persisted between decisions and processes.
        weights = {r.id: _int_weight(r) for r in eligible}
        current = {r.id: int(pointer.get(str(r.id), 0)) + weights[r.id] for r in eligible}
        winner = min(eligible, key=lambda r: (-current[r.id], -weights[r.id], r.id)).id
        scores = {rid: cur / WEIGHT_SCALE for rid, cur in current.items()}
        current[winner] -= sum(weights.values())
        keep = set(roster)
        nxt = {k: int(v) for k, v in pointer.items() if k.isdigit() and int(k) in keep}
        nxt.update({str(k): v for k, v in current.items()})
        return winner, scores, nxt
    if strategy == "least_loaded":
        scores = {r.id: r.open_leads / max(r.weight, 1e-9) for r in eligible}
        winner = min(eligible, key=lambda r: (scores[r.id], r.today, -r.weight, r.id)).id
        return winner, scores, dict(pointer)
    if strategy == "capped":
        # Fill daily quotas evenly: the rep who used the smallest share of their cap today wins.
        # A rep without a daily cap counts as having the largest cap in the group.
        caps = [r.daily_cap for r in eligible if r.daily_cap > 0]
        biggest = max(caps) if caps else 0
        scores = {}
        for r in eligible:
            cap = r.daily_cap or biggest
            scores[r.id] = r.today / cap if cap else r.today / max(r.weight, 1e-9)
        winner = min(eligible, key=lambda r: (scores[r.id], r.open_leads, -r.weight, r.id)).id
        return winner, scores, dict(pointer)
    raise ValueError(f"unknown strategy {strategy!r}")


def _candidate(rep: RepSnapshot, role: str, skip: str | None = None, score: float | None = None,
               chosen: bool = False) -> Candidate:
    return Candidate(rep_id=rep.id, name=rep.name, role=role, score=score, skip=skip, chosen=chosen,
                     weight=rep.weight, open_leads=rep.open_leads, today=rep.today)


def _skip_summary(cands: Sequence[Candidate]) -> str:
    counts: dict[str, int] = {}
    for c in cands:
        if c.skip:
            counts[c.skip] = counts.get(c.skip, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


def plan(*, lead_id: int, rule: Rule, team_id: int | None, team_name: str, ctx: Context,
         members: Sequence[RepSnapshot], owner: RepSnapshot | None = None,
         backup: RepSnapshot | None = None, backup_missing: bool = False,
         manager: RepSnapshot | None = None, pointer: Mapping[str, int] | None = None,
         previous_owner_id: int | None = None, duty: Sequence[RepSnapshot] = (),
         duty_applies: bool = True) -> Plan:
    """Sticky owner, else the rule's strategy over available members, else backup, else the
    team manager; outside working hours then the on-duty rep (``duty``, in rotation order, when
    ``duty_applies``), else the lead waits for the next working window; else the team pool."""
    pointer = dict(pointer or {})
    base = dict(lead_id=lead_id, rule=rule.name, rule_version=rule.version, strategy=rule.strategy,
                previous_owner_id=previous_owner_id)
    cands: list[Candidate] = []
    where = f"team {team_name}" if team_name else "all teams"

    if owner is not None:
        # The customer's owner keeps the customer while employed and present; hours, caps and
        # miss streaks do not break the relationship.
        reason = skip_reason(owner, ctx, rotation=False)
        reason = reason if reason in ("excluded", "left", "on_leave", "not_active") else None
        if reason is None:
            cand = _candidate(owner, "owner", chosen=True)
            return Plan(Decision(outcome="sticky", rep_id=owner.id, team_id=owner.team_id,
                                 candidates=(cand,), reason=f"customer owner {owner.name} keeps the customer",
                                 **{**base, "rule": "sticky_owner", "rule_version": "", "strategy": "sticky"}))
        cands.append(_candidate(owner, "owner", skip=reason))

    if rule.pool:
        return Plan(Decision(outcome="pool", rep_id=None, team_id=team_id, candidates=tuple(cands),
                             reason=f"rule {rule.name} sends leads to the pool of {where}", **base))

    eligible: list[RepSnapshot] = []
    skipped: dict[int, str] = {}
    for rep in sorted(members, key=lambda r: r.id):
        why = skip_reason(rep, ctx)
        if why:
            skipped[rep.id] = why
        else:
            eligible.append(rep)
    if eligible:
        winner, scores, nxt = choose(rule.strategy, eligible, pointer, (r.id for r in members))
        for rep in sorted(members, key=lambda r: r.id):
            cands.append(_candidate(rep, "member", skip=skipped.get(rep.id), score=scores.get(rep.id),
                                    chosen=rep.id == winner))
        chosen = next(r for r in eligible if r.id == winner)
        reason = (f"rule {rule.name}: {rule.strategy} chose {chosen.name} among "
                  f"{len(eligible)} available of {len(members)} in {where}")
        return Plan(Decision(outcome="assigned", rep_id=winner, team_id=team_id or chosen.team_id,
                             candidates=tuple(cands), reason=reason, **base),
                    pointer=nxt, pointer_changed=rule.strategy == "weighted_round_robin")

    for rep in sorted(members, key=lambda r: r.id):
        cands.append(_candidate(rep, "member", skip=skipped[rep.id]))
    nobody = f"nobody in {where} available" + (f" ({_skip_summary(cands)})" if cands else " (no members)")
    seen = {c.rep_id for c in cands if c.role == "member"}

    if backup is not None:
        why = skip_reason(backup, ctx, rotation=False)
        cands.append(_candidate(backup, "backup", skip=why, chosen=why is None))
        if why is None:
            return Plan(Decision(outcome="backup", rep_id=backup.id, team_id=team_id or backup.team_id,
                                 candidates=tuple(cands), reason=f"{nobody}; backup {backup.name}", **base))
    elif backup_missing and rule.backup:
        cands.append(Candidate(rep_id=0, name=rule.backup, role="backup", skip="not_found"))

    if manager is not None and manager.id not in seen:
        why = skip_reason(manager, ctx, rotation=False)
        cands.append(_candidate(manager, "manager", skip=why, chosen=why is None))
        if why is None:
            return Plan(Decision(outcome="manager", rep_id=manager.id, team_id=team_id or manager.team_id,
                                 candidates=tuple(cands), reason=f"{nobody}; team manager {manager.name}",
                                 **base))

    if not ctx.calendar.is_working(ctx.now) and any(c.skip == "outside_hours" for c in cands):
        # Off hours: never a pool grab that wakes nobody. The on-duty rep takes it now, else it
        # waits for the window and is routed to whoever is on shift then.
        if duty_applies:
            for rep in duty:
                why = skip_reason(rep, ctx, rotation=False, hours=False)
                why = why if why in ("excluded", "left", "on_leave", "not_active") else None
                cands.append(_candidate(rep, "on_duty", skip=why, chosen=why is None))
                if why is None:
                    return Plan(Decision(outcome="on_duty", rep_id=rep.id, team_id=team_id or rep.team_id,
                                         candidates=tuple(cands),
                                         reason=f"{nobody}; outside working hours: on duty {rep.name}", **base))
        until = ctx.calendar.next_working_instant(ctx.now)
        return Plan(Decision(outcome="deferred", rep_id=None, team_id=team_id, candidates=tuple(cands),
                             reason=f"{nobody}; outside working hours: routed when the window opens at "
                                    f"{until.isoformat()}", until=until, **base))

    return Plan(Decision(outcome="pool", rep_id=None, team_id=team_id, candidates=tuple(cands),
                         reason=f"{nobody}; sent to the pool", **base))
