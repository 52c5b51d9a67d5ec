#!/usr/bin/env python3
"""Issue 24's package moves, as a script that can be run again on a newer main.

    python scripts/relayout.py          # git mv every file below, then rewrite imports and paths

Each move is a `git mv` (history follows the file); then every module path and file path that
moved is rewritten wherever it is written: imports, strings naming modules (monkeypatch targets,
logger names), docstrings and comments, Markdown, pyproject.toml. Idempotent: a move already
made is skipped, and the rewrite only knows old names, which no longer occur once rewritten.
What it does not do (import-linter contracts, docs/architecture.md) is edited by hand after it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (old, new): files or whole folders, relative to the repository root.
MOVES: list[tuple[str, str]] = [
    # The store: the database, its one metadata and migration chain, and the durable primitives
    # every feature writes through (inbox, outbox, timers, kv, leases, send budget).
    ("crm_bridge/db.py", "store/db.py"),
    ("crm_bridge/models.py", "store/models.py"),
    ("crm_bridge/migrations", "store/migrations"),
    ("crm_bridge/migrate.py", "store/migrate.py"),
    ("crm_bridge/sqlite_driver.py", "store/sqlite_driver.py"),
    ("crm_bridge/wal_checkpoint.py", "store/wal_checkpoint.py"),
    ("crm_bridge/kv.py", "store/kv.py"),
    ("crm_bridge/leases.py", "store/leases.py"),
    ("crm_bridge/inbox.py", "store/inbox.py"),
    ("crm_bridge/spill.py", "store/spill.py"),
    ("crm_bridge/outbox.py", "store/outbox.py"),
    ("crm_bridge/send_budget.py", "store/send_budget.py"),
    ("crm_bridge/timers.py", "store/timers.py"),
    ("crm_bridge/dto.py", "store/dto.py"),
    ("crm_bridge/rows.py", "store/rows.py"),
    ("crm_bridge/fields.py", "store/fields.py"),
    ("crm_bridge/lead_status.py", "store/lead_status.py"),
    ("crm_bridge/captures.py", "store/captures.py"),
    # leadbot's own CRM records behind the CRMStore boundary: leads, customers, reps, teams.
    ("crm_bridge/store.py", "crm/store.py"),
    ("crm_bridge/sql_store.py", "crm/sql_store.py"),
    ("crm_bridge/leads.py", "crm/leads.py"),
    ("crm_bridge/importing.py", "crm/importing.py"),
    ("crm_bridge/csv_files.py", "crm/csv_files.py"),
    ("crm_bridge/reports.py", "crm/reports.py"),
    # Features with a home of their own.
    ("crm_bridge/routing", "routing"),
    ("bot/explain_text.py", "routing/explain_text.py"),
    ("crm_bridge/identity", "identity"),
    ("crm_bridge/send_blocks.py", "notifications/send_blocks.py"),
    # crm_bridge/ is the bridge to an existing CRM and nothing else.
    ("crm_bridge/sync/capture.py", "crm_bridge/capture.py"),
    ("crm_bridge/sync/events.py", "crm_bridge/events.py"),
    ("crm_bridge/sync/gate.py", "crm_bridge/gate.py"),
    ("crm_bridge/sync/inbound.py", "crm_bridge/inbound.py"),
    ("crm_bridge/sync/resync.py", "crm_bridge/resync.py"),
    ("crm_bridge/sync/__init__.py", "crm_bridge/__init__.py"),
    # The kernel: the text catalogue and time in words are used on every side.
    ("bot/cards/i18n.py", "leadbot/i18n.py"),
    ("bot/time_text.py", "leadbot/time_text.py"),
    # bot/'s root modules, grouped.
    ("bot/flow.py", "bot/journey/flow.py"),
    ("bot/lead_views.py", "bot/journey/views.py"),
    ("bot/lookup.py", "bot/journey/lookup.py"),
    ("bot/sla_actions.py", "bot/journey/sla.py"),
    ("bot/identity_actions.py", "bot/journey/identity.py"),
    ("bot/storm.py", "bot/actions/storm.py"),
    ("bot/http_errors.py", "bot/api/errors.py"),
    ("bot/refusals.py", "bot/api/refusals.py"),
    ("bot/serving.py", "bot/api/serving.py"),
    ("bot/delivery_adapters.py", "bot/platforms/delivery.py"),
    ("bot/directory_sync.py", "bot/platforms/directory.py"),
    ("bot/duty_command.py", "bot/handlers/duty.py"),
    ("bot/inbound.py", "bot/handlers/inbox.py"),
]

NEW_PACKAGES: dict[str, str] = {
    "store": "The store: the database (engine, SQLite driver, WAL checkpoints), the one metadata and "
             "migration chain,\nand the durable primitives every feature writes through: inbox, "
             "outbox (with card copies), timers,\nkv, leases, the send budget; DTOs and the rows "
             "they are made from. Imports nothing of leadbot but the kernel.",
    "crm": "leadbot's own CRM records behind the CRMStore boundary (store.py, sql_store.py): leads, "
           "customers, reps\nand teams, the state changes a tap makes (leads.py), the reports the "
           "scheduler reads, CSV imports.\ncrm_bridge/ keeps an existing CRM in step with them.",
    "bot/journey": "The lead's journey on the IM side: offers, card copies that follow their lead, "
                   "notices (flow.py), the\nviews cards are built from (views.py), what an SLA "
                   "step does (sla.py), merge taps (identity.py).",
}

TEXT_SUFFIXES = {".py", ".md", ".toml", ".ini", ".txt", ".cfg", ".mako", ".js", ".html"}
SKIP_DIRS = {".git", ".venv", "reference", "node_modules", "__pycache__", ".pytest_cache"}


def git(*args: str) -> None:
    subprocess.run(["git", *args], cwd=ROOT, check=True)


def module_of(path: str) -> str:
    mod = path[:-3] if path.endswith(".py") else path
    mod = mod.replace("/", ".")
    return mod[: -len(".__init__")] if mod.endswith(".__init__") else mod


def move() -> None:
    for old, new in MOVES:
        src, dst = ROOT / old, ROOT / new
        if not src.exists():
            continue  # moved by an earlier run
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists() and dst.is_file():
            git("rm", "-q", "-f", new)  # an empty __init__.py that the moved one replaces
        git("mv", old, new)
    for pkg, doc in NEW_PACKAGES.items():
        init = ROOT / pkg / "__init__.py"
        if not init.exists():
            init.write_text(f'"""{doc}"""\n', encoding="utf-8")
            git("add", str(init.relative_to(ROOT)))
    sync = ROOT / "crm_bridge/sync"
    if sync.is_dir() and not any(p.suffix == ".py" for p in sync.iterdir()):
        subprocess.run(["rm", "-rf", str(sync)], check=True)


def renames() -> tuple[dict[str, str], dict[str, str]]:
    """(old module -> new module, old path -> new path); a folder covers everything in it."""
    mods, paths = {}, {}
    for old, new in MOVES:
        mods[module_of(old)] = module_of(new)
        paths[old] = new
    mods["crm_bridge.sync"] = "crm_bridge"
    paths["crm_bridge/sync"] = "crm_bridge"
    return mods, paths


def _alternation(names: list[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


def rewrite_from_imports(text: str, mods: dict[str, str]) -> str:
    """`from crm_bridge import dto` names a module the dotted rewrite cannot see: its parent
    package stays where it is, the module goes elsewhere."""
    def fix(m: re.Match[str]) -> str:
        indent, package, names = m.group(1), m.group(2), m.group(3)
        parts = [n.strip() for n in names.split(",") if n.strip()]
        by_parent: dict[str, list[str]] = {}
        for part in parts:
            name = part.split(" as ")[0].strip()
            target = mods.get(f"{package}.{name}")
            parent = target.rsplit(".", 1)[0] if target and "." in target else package
            if target and target.rsplit(".", 1)[-1] != name:
                part = f"{target.rsplit('.', 1)[-1]} as {part.split(' as ')[1] if ' as ' in part else name}"
            by_parent.setdefault(parent, []).append(part)
        if list(by_parent) == [package]:
            return m.group(0)
        return "\n".join(f"{indent}from {parent} import {', '.join(ps)}" for parent, ps in by_parent.items())

    return re.sub(r"^([ \t]*)from ([\w.]+) import ([\w, ]+?)[ \t]*$", fix, text, flags=re.M)


def rewrite(text: str, mods: dict[str, str], paths: dict[str, str], suffix: str) -> str:
    if suffix == ".py":
        text = rewrite_from_imports(text, mods)
    dotted = re.compile(rf"(?<![\w.])({_alternation(list(mods))})(?![\w])")
    text = dotted.sub(lambda m: mods[m.group(1)], text)
    slashed = re.compile(rf"(?<![\w/.])({_alternation(list(paths))})(?![\w])")
    return slashed.sub(lambda m: paths[m.group(1)], text)


def text_files() -> list[Path]:
    out = []
    for p in ROOT.rglob("*"):
        if p.is_file() and p.suffix in TEXT_SUFFIXES and not SKIP_DIRS & set(p.relative_to(ROOT).parts):
            if p.relative_to(ROOT).as_posix() != "scripts/relayout.py":
                out.append(p)
    return out


def fix_pyproject() -> None:
    p = ROOT / "pyproject.toml"
    s = p.read_text(encoding="utf-8")
    s = re.sub(r'include = \[[^\]]*\]', 'include = ["leadbot*", "bot*", "notifications*", "crm_bridge*", "crm*", '
               '"store*", "routing*", "identity*", "scheduler*", "sandbox*"]', s, count=1)
    s = s.replace('"crm_bridge" = ["migrations/*.py"', '"store" = ["migrations/*.py"')
    p.write_text(s, encoding="utf-8")


def main() -> int:
    move()
    mods, paths = renames()
    changed = 0
    for path in text_files():
        before = path.read_text(encoding="utf-8")
        after = rewrite(before, mods, paths, path.suffix)
        if after != before:
            path.write_text(after, encoding="utf-8")
            changed += 1
    fix_pyproject()
    print(f"relayout: {len(MOVES)} moves, {changed} files rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
