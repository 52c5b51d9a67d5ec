"""Routing decisions in words, for the 为什么是我 / why text command and `leadbot explain LEAD_ID`.

The decisions come from routing.explain (rows only); every word here comes from the
catalogue (leadbot/i18n.py), so no code (a rule id such as ``sticky_owner``, a reason such as
``manager``, a channel such as ``expo``) reaches a person as it is stored.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Iterable

from leadbot.i18n import forms, has, lookup, normalize_lang, placeholders, t
from routing.decide import Candidate
from routing.explain import load_decisions
from leadbot.clock import utc
from leadbot.settings import CalendarSettings
from leadbot.time_text import date_text, local_text
from leadbot.time_policy import stamp
from leadbot.workcal import calendar_of


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _value(attribute: str, value: Any, lang: str) -> str:
    return lookup("channel", str(value), lang) if attribute == "source_channel" else _number(value)


def condition_text(cond: dict[str, Any], lang: str) -> str:
    attribute = str(cond.get("attribute", ""))
    attr = lookup("attr", attribute, lang) if not attribute.startswith("extra.") else attribute[len("extra."):]
    lo, hi = cond.get("min"), cond.get("max")
    if lo is not None and hi is not None:
        return t("cond.between", lang, attr=attr, min=_number(lo), max=_number(hi))
    if lo is not None:
        return t("cond.at_least", lang, attr=attr, min=_number(lo))
    if hi is not None:
        return t("cond.below", lang, attr=attr, max=_number(hi))
    values = [_value(attribute, v, lang) for v in cond.get("values") or ()]
    if len(values) == 1:
        return t("cond.is", lang, attr=attr, value=values[0])
    return t("cond.one_of", lang, attr=attr, values=t("sep.list", lang).join(values))


def rule_name(rule: str, lang: str) -> str:
    """Rules sales ops named in config are shown as named; leadbot's own have labels."""
    return t(f"rule.{rule}", lang) if has(f"rule.{rule}") else rule


def _once_each(cands: Iterable[Candidate]) -> list[Candidate]:
    """One line per person: a customer's owner who is also in the team was listed twice (as
    owner and as member); keep the entry that decided (chosen, else eligible, else the first
    skip) and the owner role, which says the most."""
    out: dict[int, Candidate] = {}
    for c in cands:
        seen = out.get(c.rep_id)
        if seen is None:
            out[c.rep_id] = c
            continue
        better = c if c.chosen or (seen.skip and not c.skip and not seen.chosen) else seen
        out[c.rep_id] = replace(better, role=seen.role if seen.role != "member" else c.role)
    return list(out.values())


def _role(c: Candidate, lang: str) -> str:
    key = f"explain.role.{c.role}"
    return t(key, lang) if has(key) else ""


def _instant(value: Any) -> Any:
    return utc(datetime.fromisoformat(str(value))) if value else None


def render_decision(row: Any, lang: str = "zh", history: list[Any] | None = None, calendar: Any = None) -> str:
    """``row`` is a RoutingDecision (or anything with its attributes). Times read in the zone of
    ``calendar`` (a WorkCalendar or [calendar] settings; default: the built-in calendar)."""
    lang = normalize_lang(lang)
    cal = calendar_of(calendar if calendar is not None else CalendarSettings(), (row.data or {}).get("team") or "")
    cands = _once_each(Candidate.from_json(c) for c in (row.candidates or []))
    data = dict(row.data or {})
    nobody = t("explain.nobody", lang)
    chosen = next((c.name for c in cands if c.chosen), "") or nobody
    team_name = data.get("team") or ""
    team = t("explain.team", lang, name=team_name) if team_name else t("explain.all", lang)
    outcome = row.outcome or ("assigned" if row.chosen_rep_id else "pool")
    key = "pool_rule" if outcome == "pool" and data.get("pool_rule") else outcome
    key = key if has(f"explain.{key}") and key not in ("none", "no_lead") else "assigned"
    at = utc(row.at) if getattr(row, "at", None) else None
    fmt: dict[str, Any] = dict(lead=row.lead_id, rep=chosen, rule=rule_name(row.rule, lang),
                               strategy=lookup("strategy", row.strategy or "", lang), team=team,
                               came=local_text(at, cal, lang) if at else "", until="", expected="")
    if outcome == "deferred":
        until = _instant(data.get("until"))
        fmt["until"] = local_text(until, cal, lang, now=at) if until else "?"
        fmt["expected"] = (t("explain.expected", lang, name=data["expected"]) if data.get("expected")
                           else t("explain.expected_none", lang))
    wanted = frozenset().union(*(placeholders(f) for f in forms(f"explain.{key}", lang)))
    head = t(f"explain.{key}", lang, **{k: v for k, v in fmt.items() if k in wanted})
    since = _instant(data.get("rule_since"))
    if since is not None and outcome != "sticky":
        head += t("explain.rule_since", lang, date=date_text(cal.local(since).date(), lang))
    lines = [head]
    if row.previous_owner_id is not None:
        prev = data.get("previous_owner_name") or nobody
        trigger = data.get("trigger", "new")
        tkey = f"explain.trigger.{trigger}" if has(f"explain.trigger.{trigger}") else "explain.trigger.other"
        lines.append(t(tkey, lang, prev=prev))
    if outcome != "sticky":
        if row.rule == "default":
            lines.append(t("explain.default_rule", lang))
        elif data.get("conditions"):
            conds = t("sep.list", lang).join(condition_text(c, lang) for c in data["conditions"])
            lines.append(t("explain.matched", lang, conds=conds))
    if data.get("team_missing"):
        lines.append(t("explain.team_missing", lang, team=team_name))
    if data.get("urgent") and outcome == "on_duty":
        lines.append(t("explain.urgent", lang))
    if cands and outcome != "sticky":
        lines.append(t("explain.candidates", lang))
        for c in cands:
            role = _role(c, lang)
            if c.skip:
                why = t(f"skip.{c.skip}", lang) if has(f"skip.{c.skip}") else t("skip.other", lang)
                lines.append(t("explain.skipped", lang, name=c.name, role=role, why=why))
                continue
            score = t("explain.score", lang, score=f"{c.score:.3f}") if c.score is not None else ""
            if not score:
                role = role.rstrip("，, ")
            lines.append(t("explain.chosen" if c.chosen else "explain.eligible", lang, name=c.name, role=role,
                           score=score, weight=f"{c.weight:g}", open=c.open_leads, today=c.today))
        help_key = f"explain.score_help.{row.strategy}"
        if outcome == "assigned" and has(help_key):
            lines.append(t(help_key, lang))
    if history:
        lines.append(t("explain.history", lang))
        for h in history:
            h_rep = next((c.name for c in (Candidate.from_json(x) for x in (h.candidates or [])) if c.chosen),
                         "") or nobody
            lines.append(t("explain.history_line", lang, at=stamp(utc(h.at), cal),
                           outcome=lookup("outcome", h.outcome or "assigned", lang), rep=h_rep,
                           rule=rule_name(h.rule, lang)))
    return "\n".join(lines)


async def explain_with_record(store_or_engine: Any, lead_id: int, lang: str = "zh", *,
                              calendar: Any = None) -> tuple[str, bool]:
    """(Why lead ``lead_id`` went where it went, whether it has a routing record at all).
    Accepts an AsyncEngine or anything with an ``engine`` attribute (SqlCRMStore, Router: then
    its calendar is the default)."""
    rows, exists = await load_decisions(store_or_engine, lead_id)
    if not rows:
        return t("explain.none" if exists else "explain.no_lead", lang, lead=lead_id), False
    if calendar is None:  # a Router's settings (per-team zones), else its calendar
        calendar = getattr(store_or_engine, "calendars", None) or getattr(store_or_engine, "calendar", None)
    return render_decision(rows[0], lang, history=list(reversed(rows[1:])), calendar=calendar), True


async def explain_lead(store_or_engine: Any, lead_id: int, lang: str = "zh", *, calendar: Any = None) -> str:
    return (await explain_with_record(store_or_engine, lead_id, lang, calendar=calendar))[0]
