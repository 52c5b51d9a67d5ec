"""Rule parsing, validation messages, versions and matching (pure)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from routing.rules import parse_rules, rule_version
from leadbot.settings import ConfigError
from tests.conftest import make_settings


def rules_of(rules, **assignment):
    return parse_rules(make_settings(assignment={"rules": rules, **assignment}).assignment)


def lead(**kw):
    base = dict(region="", city="", source_channel="api", product_line="", language="", amount=None,
                campaign="", company="", title="", stage="", name="", extra={})
    base.update(kw)
    return SimpleNamespace(**base)


def test_toml_shape_parses_and_matches_in_order(tmp_path):
    from leadbot.settings import load_settings

    cfg = tmp_path / "c.toml"
    cfg.write_text('''
[assignment]
default_strategy = "least_loaded"

[[assignment.rules]]
name = "ka-east"
team = "华东大客户"
strategy = "weighted_round_robin"
backup = "rep-007"
[assignment.rules.match]
region = ["上海", "江苏", "浙江"]
amount = { min = 100000, max = 500000 }
"extra.industry" = "制造"

[[assignment.rules]]
name = "english"
match = { language = "en" }
pool = "International"

[[assignment.rules]]
name = "rest"
team = "华东"
''', encoding="utf-8")
    rs = parse_rules(load_settings(cfg, environ={}).assignment)
    assert [r.name for r in rs.rules] == ["ka-east", "english", "rest"]
    ka = rs.rules[0]
    assert ka.team == "华东大客户" and ka.backup == "rep-007" and ka.strategy == "weighted_round_robin"
    assert rs.rules[2].strategy == "least_loaded"  # default_strategy applies
    hit = lead(region="上海", amount=200000.0, extra={"industry": "制造"})
    assert rs.select(hit).name == "ka-east"
    assert rs.select(lead(region="上海", amount=200000.0, extra={"industry": "医疗"})).name == "rest"
    assert rs.select(lead(language="EN ")).name == "english"
    assert rs.rules[1].pool == "International"


def test_extra_fields_and_amount_ranges():
    rs = rules_of([
        {"name": "big", "match": {"amount": {"min": 100000}}, "team": "KA"},
        {"name": "mid", "match": {"amount": {"min": 10000, "max": 100000}, "extra": {"industry": ["制造", "汽车"]}},
         "team": "Mid"},
        {"name": "hr", "match": {"extra.employees": {"max": 50}, "channel": "baidu"}, "team": "SMB"},
    ])
    assert rs.select(lead(amount=100000.0)).name == "big"  # min inclusive
    assert rs.select(lead(amount=99999.0, extra={"industry": "汽车"})).name == "mid"
    assert rs.select(lead(amount=10000.0, extra={"industry": "制造"})).name == "mid"
    assert rs.select(lead(amount=9999.0, extra={"industry": "制造"})).name == "default"
    assert rs.select(lead(amount=50000.0, extra={})).name == "default"  # missing extra never matches
    assert rs.select(lead(amount=None)).name == "default"  # a range needs a number
    assert rs.select(lead(source_channel="Baidu", extra={"employees": "30"})).name == "hr"  # text number ok
    assert rs.select(lead(source_channel="baidu", extra={"employees": 50})).name == "default"  # max exclusive
    assert rs.select(lead(source_channel="baidu", extra={"employees": "many"})).name == "default"


def test_numbers_and_booleans_match_as_text():
    rs = rules_of([{"name": "vip", "match": {"extra.vip": True, "extra.level": [1, 2]}, "team": "T"}])
    assert rs.select(lead(extra={"vip": True, "level": 2})).name == "vip"
    assert rs.select(lead(extra={"vip": "true", "level": "1"})).name == "vip"
    assert rs.select(lead(extra={"vip": False, "level": 1})).name == "default"


@pytest.mark.parametrize("rule, problem", [
    ({"team": "A"}, "rules[0]: needs a name"),
    ({"name": "x", "match": {"regoin": "上海"}}, "rules[0] ('x'): match key 'regoin' is not a lead attribute (did you mean region?)"),
    ({"name": "x", "team": "A", "pool": "A"}, "give team or pool, not both"),
    ({"name": "x", "strategy": "random"}, "strategy 'random' is not one of"),
    ({"name": "x", "match": {"amount": {"min": 10, "max": 5}}}, "min must be less than max"),
    ({"name": "x", "match": {"amount": {"from": 10}}}, "a range { min = N, max = N }"),
    ({"name": "x", "match": {"amount": {"min": "10"}}}, "match.amount.min: expected a number"),
    ({"name": "x", "match": {"region": []}}, "an empty list never matches"),
    ({"name": "x", "teem": "A"}, "unknown key 'teem' (did you mean team?)"),
    ({"name": "x", "team": ""}, "team must be a non-empty name"),
])
def test_invalid_rules_name_the_rule(rule, problem):
    with pytest.raises(ConfigError) as e:
        rules_of([{"name": "ok", "team": "A"}, rule] if rule.get("name") != "ok" else [rule])
    msg = str(e.value)
    assert msg.startswith("config: [assignment] rules[1]")
    assert problem.replace("rules[0]", "rules[1]") in msg


def test_duplicate_names_rejected():
    with pytest.raises(ConfigError, match=r"rules\[1\] \('a'\): name is already used by rules\[0\]"):
        rules_of([{"name": "a"}, {"name": "a"}])


def test_version_is_stable_and_tracks_content():
    a = rules_of([{"name": "r", "team": "T", "match": {"region": ["上海", "江苏"], "amount": {"min": 1}}}]).rules[0]
    b = rules_of([{"match": {"amount": {"min": 1}, "region": ["上海", "江苏"]}, "team": "T", "name": "r"}]).rules[0]
    c = rules_of([{"name": "r", "team": "T", "match": {"region": ["上海"], "amount": {"min": 1}}}]).rules[0]
    assert a.version == b.version and len(a.version) == 12
    assert a.version != c.version
    assert rule_version({"x": 1}) == "".join(rule_version({"x": 1}))  # pure, no process salt


def test_no_rules_means_default_rule_for_everyone():
    rs = rules_of([])
    assert rs.select(lead()).name == "default" and rs.default.team is None
    assert rs.default.strategy == "weighted_round_robin"
