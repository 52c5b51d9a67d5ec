"""Routing rules: parsed once from ``[assignment] rules``, matched against a lead, versioned.

TOML shape (an array of tables; order matters, the first matching rule decides)::

    [[assignment.rules]]
    name = "ka-east"                       # required, unique
    team = "华东大客户"                      # target team by name ...
    # pool = "华东大客户"                    # ... or straight to that team's pool (公海), not both;
                                           # neither: every active rep of role "rep"
    strategy = "weighted_round_robin"      # weighted_round_robin | least_loaded | capped
                                           # (default: [assignment] default_strategy)
    backup = "rep-007"                     # optional: rep external id (or numeric id) used
                                           # when nobody in the team is available
    urgent = true                          # optional: outside working hours its leads go to the
                                           # on-duty rep at once ([duty]), even with only_urgent
    [assignment.rules.match]               # every key must match (AND); no match = catch-all
    region = ["上海", "江苏", "浙江"]         # a list matches any of its values
    source_channel = "baidu_ads"           # a scalar matches that value
    amount = { min = 100000, max = 500000 }  # range: min <= value < max (either side optional)
    "extra.industry" = "制造"               # a custom field the source sent (lead.extra)
    extra = { employees = { min = 200 } }  # the same, written as a nested table

Keys of ``match``: any lead attribute (region, city, source_channel (or channel), product_line,
language, amount, campaign, company, title, stage, name) and ``extra.<key>``. Text compares
trimmed and case-insensitively; a missing value never matches (a range needs a number).

A rule's version is a stable hash of its content, recorded with every decision, so
"why was this routed there" can be answered against the rule as it was.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping

from leadbot.settings import ROUTING_STRATEGIES as STRATEGIES
from leadbot.settings import AssignmentSettings, ConfigError
LEAD_ATTRIBUTES = ("region", "city", "source_channel", "product_line", "language", "amount",
                   "campaign", "company", "title", "stage", "name")
ALIASES = {"channel": "source_channel", "product": "product_line", "lang": "language"}
RULE_KEYS = ("name", "match", "team", "pool", "strategy", "backup", "urgent")


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``match`` entry: an attribute path and either a set of values or a numeric range."""

    attribute: str  # "region" or "extra.industry"
    values: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None

    @property
    def is_range(self) -> bool:
        return self.min is not None or self.max is not None

    def matches(self, lead: Any) -> bool:
        value = lead_value(lead, self.attribute)
        if value is None or value == "":
            return False
        if self.is_range:
            number = _number(value)
            if number is None:
                return False
            if self.min is not None and number < self.min:
                return False
            if self.max is not None and number >= self.max:
                return False
            return True
        if isinstance(value, (list, tuple)):
            return any(_norm(v) in self.values for v in value)
        return _norm(value) in self.values

    def describe(self) -> str:
        if self.is_range:
            if self.max is None:
                return f"{self.attribute} >= {self.min:g}"
            if self.min is None:
                return f"{self.attribute} < {self.max:g}"
            return f"{self.min:g} <= {self.attribute} < {self.max:g}"
        return f"{self.attribute} in {list(self.values)}" if len(self.values) > 1 \
            else f"{self.attribute} = {self.values[0]}"


@dataclass(frozen=True, slots=True)
class Rule:
    index: int  # -1 for the built-in default rule
    name: str
    conditions: tuple[Condition, ...]
    team: str | None
    pool: str | None
    strategy: str
    backup: str | None
    version: str
    urgent: bool = False  # outside working hours its leads go to the on-duty rep at once ([duty])

    @property
    def target_team(self) -> str | None:
        return self.pool or self.team

    def matches(self, lead: Any) -> bool:
        return all(c.matches(lead) for c in self.conditions)


def lead_value(lead: Any, attribute: str) -> Any:
    if attribute.startswith("extra."):
        extra = getattr(lead, "extra", None) or {}
        return extra.get(attribute[len("extra."):])
    return getattr(lead, attribute, None)


def _norm(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().casefold()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip().replace(",", ""))
    except ValueError:
        return None


def rule_version(content: Mapping[str, Any]) -> str:
    """Stable across processes and key order: sha256 of canonical JSON, 12 hex digits."""
    canonical = json.dumps(_plain(content), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _fail(i: int, name: str | None, problem: str) -> ConfigError:
    label = f"rules[{i}]" + (f" ({name!r})" if name else "")
    return ConfigError(f"config: [assignment] {label}: {problem}")


def _parse_condition(i: int, name: str, key: str, raw: Any) -> Condition:
    attribute = ALIASES.get(key, key)
    if not attribute.startswith("extra.") and attribute not in LEAD_ATTRIBUTES:
        close = difflib.get_close_matches(attribute, LEAD_ATTRIBUTES, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise _fail(i, name, f"match key {key!r} is not a lead attribute{hint}; "
                             "use one of " + ", ".join(LEAD_ATTRIBUTES) + " or extra.<field>")
    if attribute == "extra.":
        raise _fail(i, name, "match key 'extra.' needs a field name")
    if isinstance(raw, Mapping):
        unknown = set(raw) - {"min", "max"}
        if unknown or not raw:
            raise _fail(i, name, f"match.{key}: a table must be a range {{ min = N, max = N }}")
        bounds = {}
        for side in ("min", "max"):
            if side in raw:
                v = raw[side]
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise _fail(i, name, f"match.{key}.{side}: expected a number, got {v!r}")
                bounds[side] = float(v)
        if "min" in bounds and "max" in bounds and bounds["min"] >= bounds["max"]:
            raise _fail(i, name, f"match.{key}: min must be less than max")
        return Condition(attribute, min=bounds.get("min"), max=bounds.get("max"))
    items = list(raw) if isinstance(raw, (list, tuple)) else [raw]
    if not items:
        raise _fail(i, name, f"match.{key}: an empty list never matches")
    for v in items:
        if isinstance(v, (Mapping, list, tuple)) or v is None:
            raise _fail(i, name, f"match.{key}: values must be text, numbers or true/false")
    return Condition(attribute, values=tuple(sorted({_norm(v) for v in items})))


def parse_rule(i: int, raw: Any, default_strategy: str) -> Rule:
    if not isinstance(raw, Mapping):
        raise _fail(i, None, "must be a table")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(i, None, "needs a name")
    name = name.strip()
    if len(name) > 128:
        raise _fail(i, name, "name is longer than 128 characters")
    unknown = [k for k in raw if k not in RULE_KEYS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], RULE_KEYS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise _fail(i, name, f"unknown key {unknown[0]!r}{hint}")
    match = raw.get("match", {})
    if not isinstance(match, Mapping):
        raise _fail(i, name, "match must be a table")
    conditions: list[Condition] = []
    for key, value in match.items():
        if key == "extra":
            if not isinstance(value, Mapping) or not value:
                raise _fail(i, name, "match.extra must be a table of field = value")
            for sub, subvalue in value.items():
                conditions.append(_parse_condition(i, name, f"extra.{sub}", subvalue))
        else:
            conditions.append(_parse_condition(i, name, str(key), value))
    team, pool = raw.get("team"), raw.get("pool")
    if team is not None and pool is not None:
        raise _fail(i, name, "give team or pool, not both")
    for key, value in (("team", team), ("pool", pool), ("backup", raw.get("backup"))):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))
                                  or not str(value).strip()):
            raise _fail(i, name, f"{key} must be a non-empty name")
    strategy = raw.get("strategy", default_strategy)
    if strategy not in STRATEGIES:
        raise _fail(i, name, f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    backup = raw.get("backup")
    urgent = raw.get("urgent", False)
    if not isinstance(urgent, bool):
        raise _fail(i, name, "urgent must be true or false")
    content = {"name": name, "match": _plain(match), "team": team, "pool": pool,
               "strategy": strategy, "backup": backup}
    if urgent:  # only then: the versions of existing rules stay what they were
        content["urgent"] = True
    return Rule(index=i, name=name, conditions=tuple(sorted(conditions, key=lambda c: c.attribute)),
                team=str(team).strip() if team is not None else None,
                pool=str(pool).strip() if pool is not None else None,
                strategy=strategy, backup=str(backup).strip() if backup is not None else None,
                version=rule_version(content), urgent=urgent)


def default_rule(strategy: str) -> Rule:
    return Rule(index=-1, name="default", conditions=(), team=None, pool=None, strategy=strategy,
                backup=None, version=rule_version({"name": "default", "strategy": strategy}))


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    default: Rule

    def select(self, lead: Any) -> Rule:
        """The first matching rule; leads no rule matches fall to the default (every rep)."""
        for rule in self.rules:
            if rule.matches(lead):
                return rule
        return self.default


def parse_rules(settings: AssignmentSettings) -> RuleSet:
    """Raises ConfigError naming the rule ("config: [assignment] rules[2] ('vip'): ...")."""
    if settings.default_strategy not in STRATEGIES:
        raise ConfigError("config: [assignment] default_strategy: must be " + ", ".join(STRATEGIES))
    rules = [parse_rule(i, raw, settings.default_strategy) for i, raw in enumerate(settings.rules)]
    seen: dict[str, int] = {}
    for rule in rules:
        if rule.name in seen:
            raise _fail(rule.index, rule.name, f"name is already used by rules[{seen[rule.name]}]")
        seen[rule.name] = rule.index
    return RuleSet(tuple(rules), default_rule(settings.default_strategy))
