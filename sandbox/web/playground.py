"""Routing playground: an admin's own [assignment] rules, run on a throwaway store seeded with the
sandbox's reps, over 100 sample leads; each decision comes back with leadbot's own explanation.

It uses the production Router (routing) on a temporary SQLite file, so what it shows
is what `leadbot serve` would decide with those rules and those reps.
"""

from __future__ import annotations

import tempfile
import tomllib
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from routing.explain_text import explain_lead
from leadbot.clock import ManualClock
from leadbot.settings import ConfigError, settings_from_mapping
from sandbox import seed


def parse_config(text: str) -> tuple[Any, str]:
    """(Settings with the file's [assignment] and [calendar], or None; the problem, if any)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return None, f"not valid TOML: {e}"
    if "assignment" not in data:
        return None, "no [assignment] section: paste the [assignment] part of your config.toml"
    mapping = {"assignment": data["assignment"], "calendar": data.get("calendar", seed.CALENDAR)}
    try:
        return settings_from_mapping(mapping, environ={}, source="playground"), ""
    except ConfigError as e:
        return None, str(e)


async def run_playground(config_text: str, now: datetime, *, n: int = 100, lang: str = "zh") -> dict[str, Any]:
    from store.db import create_engine
    from store.dto import LeadInput
    from store.migrate import upgrade
    from routing.engine import Router
    from crm.sql_store import SqlCRMStore

    settings, problem = parse_config(config_text)
    if settings is None:
        return {"ok": False, "error": problem}
    clock = ManualClock(now)
    # A throwaway file (in RAM when /dev/shm exists): the Router needs a real database.
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="leadbot-playground-", dir=shm) as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'playground.db'}")
        try:
            await upgrade(engine)
            store = SqlCRMStore(engine, clock)
            await store.import_reps(seed.REPS)
            try:
                router = Router(engine, settings.assignment, settings.calendar, clock)
            except ConfigError as e:
                return {"ok": False, "error": str(e)}
            teams = {t.id: t.name for t in await store.list_teams()}
            reps = {r.id: r.name for r in await store.list_reps()}
            rows = []
            for i, sample in enumerate(seed.sample_leads(n)):
                fields = {k: v for k, v in sample.items() if k != "channel"}
                lead, _ = await store.create_lead(LeadInput(fields=fields, source_channel=sample["channel"]))
                try:
                    decision = await router.assign(lead.id)
                except ConfigError as e:  # a rule naming a team or backup the reps do not have
                    return {"ok": False, "error": str(e)}
                team = teams.get(decision.team_id or 0, "")
                target = reps.get(decision.rep_id or 0) or (f"{team} 公海" if decision.pool else "—")
                rows.append({"n": i + 1, "name": sample["name"], "region": sample["region"],
                             "channel": sample["channel"], "product_line": sample["product_line"],
                             "amount": sample.get("amount"), "rule": decision.rule or "(default)",
                             "outcome": decision.outcome, "target": target, "team": team,
                             "strategy": decision.strategy, "reason": decision.reason,
                             "explanation": await explain_lead(router, lead.id, lang)})
        finally:
            await engine.dispose()
    return {"ok": True, "count": len(rows), "rows": rows,
            "by_target": Counter(r["target"] for r in rows).most_common(),
            "by_rule": Counter(r["rule"] for r in rows).most_common(),
            "rules": [dict(r) for r in settings.assignment.rules]}
