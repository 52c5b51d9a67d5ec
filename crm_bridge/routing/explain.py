"""Routing decisions in words, from the routing_decisions rows alone (no settings needed), for
the 为什么是我 / why text command and `leadbot explain LEAD_ID`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_bridge.db import session_factory
from crm_bridge.models import Lead, RoutingDecision
from crm_bridge.routing.decide import Candidate
from leadbot.clock import utc
from leadbot.settings import CalendarSettings
from leadbot.time_policy import local_text, stamp
from leadbot.workcal import calendar_of


def _instant(value: Any) -> Any:
    return utc(datetime.fromisoformat(str(value))) if value else None

_T: dict[str, dict[str, str]] = {
    "zh": {
        "none": "线索 #{lead} 还没有分配记录。",
        "no_lead": "没有编号为 #{lead} 的线索。",
        "sticky": "线索 #{lead} 分配给 {rep}：{rep} 是该客户的现有负责人，老客户优先归属原负责人。",
        "assigned": "线索 #{lead} 按规则「{rule}」（版本 {version}）以{strategy}分配给 {rep}。",
        "backup": "线索 #{lead} 匹配规则「{rule}」（版本 {version}），但{team}暂无可接人员，转给后备人员 {rep}。",
        "manager": "线索 #{lead} 匹配规则「{rule}」（版本 {version}），但{team}暂无可接人员，转给团队经理 {rep}。",
        "pool": "线索 #{lead} 匹配规则「{rule}」（版本 {version}），{team}暂无可接人员，已进入公海：团队每位在岗成员各收到一张卡片，先认领者得。",
        "on_duty": "线索 #{lead} 于 {came}（非工作时间）到达，匹配规则「{rule}」（版本 {version}），已发给值班 {rep}。",
        "deferred": "线索 #{lead} 于 {came}（非工作时间）到达，匹配规则「{rule}」（版本 {version}）；{team}没有值班人员，{until} 分配给{expected}，首次跟进时限从那时起算。",
        "expected": "当时在班的 {name}（按当前轮转预计）",
        "expected_none": "当时在班的销售",
        "urgent": "该规则标记为紧急：非工作时间直接发给值班人员。",
        "pool_rule": "线索 #{lead} 匹配规则「{rule}」（版本 {version}），该规则直接将线索放入{team}公海。",
        "matched": "匹配条件：{conds}。",
        "default_rule": "没有规则匹配，使用默认规则（所有销售）。",
        "candidates": "候选人：",
        "chosen": "  ✔ {name}：{role}{score}（权重 {weight:g}，在手 {open}，今日 {today}）— 选中",
        "eligible": "  · {name}：{role}{score}（权重 {weight:g}，在手 {open}，今日 {today}）",
        "skipped": "  ✘ {name}：{role}跳过（{why}）",
        "score": "得分 {score:.3f}",
        "score_help_weighted_round_robin": "得分 = 加权轮询累计值，最高者得。",
        "score_help_least_loaded": "得分 = 在手线索数 ÷ 权重，最低者得。",
        "score_help_capped": "得分 = 今日已用配额比例，最低者得。",
        "trigger_declined": "此前负责人 {prev} 已放弃该线索。",
        "trigger_sla_reassign": "此前负责人 {prev} 未在时限内跟进，线索被重新分配。",
        "trigger_rep_left": "此前负责人 {prev} 已离职，线索被重新分配。",
        "trigger_other": "此前负责人 {prev}，重新分配原因：{trigger}。",
        "team_missing": "注意：规则中的团队「{team}」不存在，请检查配置。",
        "team": "团队「{name}」",
        "all": "所有销售中",
        "history": "更早的分配记录：",
        "history_line": "  {at} {outcome} → {rep}（规则「{rule}」）",
        "nobody": "无人",
        "role_owner": "客户负责人，",
        "role_backup": "后备，",
        "role_manager": "经理，",
        "role_on_duty": "值班，",
        "role_member": "",
    },
    "en": {
        "none": "Lead #{lead} has no routing record yet.",
        "no_lead": "There is no lead #{lead}.",
        "sticky": "Lead #{lead} went to {rep}: {rep} already owns this customer, and existing customers stay with their owner.",
        "assigned": "Lead #{lead} went to {rep} by rule \"{rule}\" (version {version}) using {strategy}.",
        "backup": "Lead #{lead} matched rule \"{rule}\" (version {version}), but nobody in {team} was available, so it went to the backup {rep}.",
        "manager": "Lead #{lead} matched rule \"{rule}\" (version {version}), but nobody in {team} was available, so it went to the team manager {rep}.",
        "pool": "Lead #{lead} matched rule \"{rule}\" (version {version}); nobody in {team} was available, so it is in the pool: every active member of the team got a card of their own, and the first to claim it wins.",
        "on_duty": "Lead #{lead} came in at {came} (outside working hours) and matched rule \"{rule}\" (version {version}); it went to {rep}, on duty.",
        "deferred": "Lead #{lead} came in at {came} (outside working hours) and matched rule \"{rule}\" (version {version}); nobody in {team} is on duty, so at {until} it goes to {expected}, and its first-touch SLA counts from then.",
        "expected": "whoever is on shift then ({name} by the current rotation)",
        "expected_none": "whoever is on shift then",
        "urgent": "The rule marks its leads urgent: outside working hours they go straight to the rep on duty.",
        "pool_rule": "Lead #{lead} matched rule \"{rule}\" (version {version}), which sends leads straight to the pool of {team}.",
        "matched": "Matched on: {conds}.",
        "default_rule": "No rule matched; the default rule (all reps) applied.",
        "candidates": "Candidates:",
        "chosen": "  ✔ {name}: {role}{score} (weight {weight:g}, {open} open, {today} today) — chosen",
        "eligible": "  · {name}: {role}{score} (weight {weight:g}, {open} open, {today} today)",
        "skipped": "  ✘ {name}: {role}skipped ({why})",
        "score": "score {score:.3f}",
        "score_help_weighted_round_robin": "Score = weighted round-robin credit; the highest wins.",
        "score_help_least_loaded": "Score = open leads ÷ weight; the lowest wins.",
        "score_help_capped": "Score = share of today's cap used; the lowest wins.",
        "trigger_declined": "The previous owner {prev} passed on it.",
        "trigger_sla_reassign": "The previous owner {prev} did not follow up in time, so it was reassigned.",
        "trigger_rep_left": "The previous owner {prev} left the company, so it was reassigned.",
        "trigger_other": "Previous owner {prev}; reassigned because: {trigger}.",
        "team_missing": "Note: the rule's team \"{team}\" does not exist; check the configuration.",
        "team": "team \"{name}\"",
        "all": "any team",
        "history": "Earlier decisions:",
        "history_line": "  {at} {outcome} → {rep} (rule \"{rule}\")",
        "nobody": "nobody",
        "role_owner": "customer owner, ",
        "role_backup": "backup, ",
        "role_manager": "manager, ",
        "role_on_duty": "on duty, ",
        "role_member": "",
    },
}

_STRATEGY = {
    "zh": {"weighted_round_robin": "加权轮询", "least_loaded": "最少在手优先", "capped": "配额均衡（每日上限）",
           "sticky": "老客户归属"},
    "en": {"weighted_round_robin": "weighted round robin", "least_loaded": "least loaded",
           "capped": "capped (daily quotas)", "sticky": "sticky ownership"},
}

SKIP_WORDS = {
    "zh": {"excluded": "已放弃或被排除", "left": "已离职", "on_leave": "休假中", "not_active": "账号未启用",
           "sidelined": "连续超时未跟进，暂停轮询", "outside_hours": "不在工作时间", "inactive": "近期不在线",
           "over_capacity": "在手线索已满", "daily_cap": "今日已达上限", "no_weight": "权重为 0",
           "not_found": "找不到此人"},
    "en": {"excluded": "passed or excluded", "left": "has left", "on_leave": "on leave",
           "not_active": "account not active", "sidelined": "sidelined after missed follow-ups",
           "outside_hours": "outside working hours", "inactive": "not active recently",
           "over_capacity": "at open-lead capacity", "daily_cap": "reached today's cap",
           "no_weight": "weight is 0", "not_found": "not found"},
}

_OUTCOME = {
    "zh": {"sticky": "老客户归属", "assigned": "分配", "backup": "后备", "manager": "经理", "pool": "公海",
           "on_duty": "值班", "deferred": "等待工作时间"},
    "en": {"sticky": "sticky", "assigned": "assigned", "backup": "backup", "manager": "manager", "pool": "pool",
           "on_duty": "on duty", "deferred": "waiting for working hours"},
}


def render_decision(row: Any, lang: str = "zh", history: list[Any] | None = None, calendar: Any = None) -> str:
    """``row`` is a RoutingDecision (or anything with its attributes). Times read in the zone of
    ``calendar`` (a WorkCalendar or [calendar] settings; default: the built-in calendar)."""
    lang = lang if lang in _T else "zh"
    cal = calendar_of(calendar if calendar is not None else CalendarSettings(), (row.data or {}).get("team") or "")
    t = _T[lang]
    cands = [Candidate.from_json(c) for c in (row.candidates or [])]
    data = dict(row.data or {})
    chosen = next((c.name for c in cands if c.chosen), "") or t["nobody"]
    team_name = data.get("team") or ""
    team = t["team"].format(name=team_name) if team_name else t["all"]
    outcome = row.outcome or ("assigned" if row.chosen_rep_id else "pool")
    fmt = dict(lead=row.lead_id, rep=chosen, rule=row.rule, version=row.rule_version or "-",
               strategy=_STRATEGY[lang].get(row.strategy, row.strategy), team=team,
               came=local_text(utc(row.at), cal, lang) if row.at else "")
    if outcome == "deferred":
        until = _instant(data.get("until"))
        fmt["until"] = local_text(until, cal, lang, now=utc(row.at) if row.at else None) if until else "?"
        fmt["expected"] = (t["expected"].format(name=data["expected"]) if data.get("expected")
                           else t["expected_none"])
    key = outcome
    if outcome == "pool" and data.get("pool_rule"):
        key = "pool_rule"
    lines = [t.get(key, t["assigned"]).format(**fmt)]
    trigger = data.get("trigger", "new")
    if row.previous_owner_id is not None:
        prev = data.get("previous_owner_name") or f"#{row.previous_owner_id}"
        tkey = f"trigger_{trigger}" if f"trigger_{trigger}" in t else "trigger_other"
        lines.append(t[tkey].format(prev=prev, trigger=trigger))
    if outcome != "sticky":
        if row.rule == "default":
            lines.append(t["default_rule"])
        elif data.get("matched"):
            lines.append(t["matched"].format(conds="; ".join(data["matched"])))
    if data.get("team_missing"):
        lines.append(t["team_missing"].format(team=team_name))
    if data.get("urgent") and outcome == "on_duty":
        lines.append(t["urgent"])
    if cands and outcome != "sticky":
        lines.append(t["candidates"])
        for c in cands:
            role = t[f"role_{c.role}"] if f"role_{c.role}" in t else ""
            if c.skip:
                lines.append(t["skipped"].format(name=c.name, role=role, why=SKIP_WORDS[lang].get(c.skip, c.skip)))
            else:
                score = t["score"].format(score=c.score) if c.score is not None else ""
                if not score and role.endswith(("，", ", ")):
                    role = role.rstrip("，, ")
                line = t["chosen" if c.chosen else "eligible"]
                lines.append(line.format(name=c.name, role=role, score=score, weight=c.weight,
                                         open=c.open_leads, today=c.today))
        help_key = f"score_help_{row.strategy}"
        if outcome == "assigned" and help_key in t:
            lines.append(t[help_key])
    if history:
        lines.append(t["history"])
        for h in history:
            h_cands = [Candidate.from_json(c) for c in (h.candidates or [])]
            h_rep = next((c.name for c in h_cands if c.chosen), "") or t["nobody"]
            h_out = h.outcome or "assigned"
            lines.append(t["history_line"].format(at=stamp(utc(h.at), cal),
                                                  outcome=_OUTCOME[lang].get(h_out, h_out), rep=h_rep,
                                                  rule=h.rule))
    return "\n".join(lines)


async def explain_lead(store_or_engine: Any, lead_id: int, lang: str = "zh", *,
                       with_found: bool = False, calendar: Any = None) -> Any:
    """Why lead ``lead_id`` went where it went, in Chinese (default) or English. Accepts an
    AsyncEngine or anything with an ``engine`` attribute (SqlCRMStore, Router). ``with_found``:
    returns (text, whether the lead has a routing record)."""
    engine: AsyncEngine = store_or_engine if isinstance(store_or_engine, AsyncEngine) \
        else store_or_engine.engine
    sessions = session_factory(engine)
    async with sessions() as session:
        rows = list((await session.execute(
            select(RoutingDecision).where(RoutingDecision.lead_id == lead_id)
            .order_by(RoutingDecision.id.desc()).limit(6))).scalars())
        exists = bool(rows) or (await session.get(Lead, lead_id)) is not None
    if not rows:
        lang = lang if lang in _T else "zh"
        text = _T[lang]["none" if exists else "no_lead"].format(lead=lead_id)
    else:
        text = render_decision(rows[0], lang, history=list(reversed(rows[1:])), calendar=calendar)
    return (text, bool(rows)) if with_found else text
