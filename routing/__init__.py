"""Lead routing: rules from ``[assignment]``, sticky ownership, fair strategies, availability,
miss streaks, and an explainable audit trail (routing_decisions).

Public API: Router (engine.py), Decision / Candidate (decide.py), StreakEvent, parse_rules,
load_decisions (the rows routing/explain_text.py puts into words).
"""

from routing.decide import Candidate, Decision
from routing.engine import RoutingConflict, Router, StreakEvent
from routing.explain import load_decisions
from routing.rules import Rule, RuleSet, parse_rules

__all__ = ["Candidate", "Decision", "Router", "RoutingConflict", "StreakEvent", "Rule", "RuleSet",
           "load_decisions", "parse_rules"]
