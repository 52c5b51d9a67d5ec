"""The pure decision: deterministic, exact weighted shares, fallbacks in order."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

from routing.decide import Context, RepSnapshot, choose, plan
from leadbot.workcal import WorkCalendar
from routing.rules import parse_rules
from tests.conftest import make_settings

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 Shanghai
CAL = WorkCalendar.from_settings(make_settings().calendar)


def reps(*weights: float) -> list[RepSnapshot]:
    return [RepSnapshot(id=i + 1, name=f"r{i + 1}", weight=w) for i, w in enumerate(weights)]


def test_smooth_wrr_exact_and_interleaved():
    pointer: dict = {}
    picks = []
    members = reps(1, 2, 3)
    for _ in range(600):
        winner, _, pointer = choose("weighted_round_robin", members, pointer, [1, 2, 3])
        picks.append(winner)
    assert Counter(picks) == {1: 100, 2: 200, 3: 300}
    assert picks[:6] == [3, 2, 3, 1, 2, 3]  # interleaved, not 3,3,3,2,2,1
    assert sum(pointer.values()) == 0


def test_same_inputs_same_decision():
    rule = parse_rules(make_settings().assignment).default
    ctx = Context(now=NOW, calendar=CAL)
    members = reps(1, 2, 3)
    pointer = {"1": 500, "2": -1500, "3": 1000}
    a = plan(lead_id=7, rule=rule, team_id=None, team_name="", ctx=ctx, members=members, pointer=pointer)
    b = plan(lead_id=7, rule=rule, team_id=None, team_name="", ctx=ctx, members=list(reversed(members)),
             pointer=dict(pointer))
    assert a == b
    assert a.decision.rep_id == 3 and a.decision.outcome == "assigned"


def test_skips_then_backup_manager_pool_in_order():
    rule = parse_rules(make_settings(assignment={"rules": [{"name": "r", "team": "T", "backup": "b"}]})
                       .assignment).rules[0]
    ctx = Context(now=NOW, calendar=CAL)
    members = [RepSnapshot(id=1, name="a", status="on_leave"), RepSnapshot(id=2, name="b", sidelined=True),
               RepSnapshot(id=3, name="c", capacity=2, open_leads=2), RepSnapshot(id=4, name="d", daily_cap=1, today=1)]
    backup = RepSnapshot(id=9, name="bk")
    manager = RepSnapshot(id=10, name="mgr", role="manager")
    p = plan(lead_id=1, rule=rule, team_id=5, team_name="T", ctx=ctx, members=members, backup=backup,
             manager=manager)
    assert p.decision.outcome == "backup" and p.decision.rep_id == 9
    assert [c.skip for c in p.decision.candidates] == ["on_leave", "sidelined", "over_capacity", "daily_cap", None]
    p = plan(lead_id=1, rule=rule, team_id=5, team_name="T", ctx=ctx, members=members,
             backup=RepSnapshot(id=9, name="bk", status="left"), manager=manager)
    assert p.decision.outcome == "manager" and p.decision.rep_id == 10
    p = plan(lead_id=1, rule=rule, team_id=5, team_name="T", ctx=ctx, members=members,
             manager=RepSnapshot(id=10, name="mgr", status="on_leave"))
    assert p.decision.outcome == "pool" and p.decision.rep_id is None and p.decision.pool


def test_least_loaded_and_capped():
    members = [RepSnapshot(id=1, name="a", open_leads=4, today=0, weight=1),
               RepSnapshot(id=2, name="b", open_leads=5, today=3, weight=2),
               RepSnapshot(id=3, name="c", open_leads=3, today=5, weight=1, daily_cap=10)]
    winner, scores, _ = choose("least_loaded", members, {}, [1, 2, 3])
    assert winner == 2 and scores[2] == 2.5  # 5 open / weight 2
    winner, scores, _ = choose("capped", members, {}, [1, 2, 3])
    assert winner == 1  # 0/10 used; b uses 3/10 (no cap: the group's largest), c 5/10
    assert scores == {1: 0.0, 2: 0.3, 3: 0.5}


def test_snapshots_are_reused_only_for_identical_rows() -> None:
    from collections import namedtuple

    from routing.engine import _Snapshots

    Row = namedtuple("Row", "id name team_id role status weight capacity daily_cap working_hours sidelined "
                            "last_active_at open_leads today")
    snaps = _Snapshots()
    row = Row(1, "张三", 7, "rep", "active", 1.0, 0, 0, "", False, None, 3, 1)
    first = snaps(row)
    assert snaps(Row(*row)) is first  # the same values: the same snapshot
    busier = snaps(row._replace(open_leads=4, today=2))  # the chosen rep's loads moved on
    assert busier is not first and (busier.open_leads, busier.today) == (4, 2)
    assert (first.open_leads, first.today) == (3, 1)
    snaps.LIMIT = 2
    snaps(row._replace(id=2))  # over the limit: the cache starts again rather than grow
    assert snaps(row) is not first and snaps(row) == first


def test_a_decision_asks_the_calendar_once_per_distinct_hours() -> None:
    asked = []

    class Counting:
        def on_clock(self, now, hours=""):
            asked.append(hours)
            return hours != "00:00-00:01"

    ctx = Context(now=NOW, calendar=Counting())  # type: ignore[arg-type]
    answers = [ctx.on_clock(h) for h in ("", "", "09:00-18:00", "", "00:00-00:01", "09:00-18:00")]
    assert answers == [True, True, True, True, False, True]
    assert asked == ["", "09:00-18:00", "00:00-00:01"]
