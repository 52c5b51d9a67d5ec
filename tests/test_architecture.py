"""The rules of docs/architecture.md, checked: the import contracts (import-linter, contracts in
pyproject.toml), no private names across files, one definition of each vocabulary, and a map that
names every package."""

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The code that ships (and the benchmarks, which drive it): tests may look inside what they test.
SOURCE_PACKAGES = ("leadbot", "store", "crm", "routing", "identity", "crm_bridge", "bot", "notifications", "scheduler",
                   "sandbox", "bench")
# The one adapter over a library's internals (aiosqlite's connection thread, SQLAlchemy's aiosqlite
# adapter). It checks they are still there (module() answers None when not) and nothing else
# reaches into them.
PRIVATE_ADAPTERS = {"store/sqlite_driver.py"}


def _source_files() -> list[Path]:
    return [p for pkg in SOURCE_PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_import_contracts_are_kept() -> None:
    exe = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_required_top_level_layout() -> None:
    for name in ("bot", "bot/handlers", "bot/cards", "notifications", "crm_bridge", "scheduler", "tests"):
        assert (ROOT / name).is_dir(), name
    for name in ("config.example.toml", "pyproject.toml", "README.md", "docs/architecture.md"):
        assert (ROOT / name).is_file(), name


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_in(tree: ast.AST) -> set[str]:
    """Every name a file defines or assigns (functions, classes, variables, attributes it sets,
    parameters, __slots__ entries): a private name among these is the file's own."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _private(node.value):
            names.add(node.value)
    return names


def _own_object(node: ast.expr) -> bool:
    """self._x, cls._x, super()._x: a class using what its own hierarchy defines."""
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def private_names_used_across_files(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _defined_in(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [f"{node.lineno}: from {node.module} import {a.name}" for a in node.names if _private(a.name)]
        elif (isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in here
              and not _own_object(node.value)):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_private_names_across_files() -> None:
    """A leading underscore means "this file's own": another file that needs it gets a public
    name for it (or the module that owns it does the work)."""
    problems = [f"{_rel(p)}:{line}" for p in _source_files() if _rel(p) not in PRIVATE_ADAPTERS
                for line in private_names_used_across_files(p)]
    assert not problems, "\n".join(problems)


def test_the_private_names_check_sees_both_kinds(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from store.outbox import _values\n"
                      "class A:\n    def __init__(self):\n        self._mine = 1\n"
                      "    def f(self, flow, other):\n        return flow._enqueue, other._mine, self._mine\n")
    assert private_names_used_across_files(sample) == ["1: from store.outbox import _values",
                                                      "6: flow._enqueue"]


# Each vocabulary, where it is defined, and the members that give it away when written again.
VOCABULARIES = {
    "routing strategies": ("leadbot/settings.py", {"weighted_round_robin", "least_loaded", "capped"}),
    "lead statuses leadbot works on": ("store/lead_status.py", {"new", "assigned", "pool", "claimed"}),
    "button actions": ("bot/cards/model.py", {"claim", "advance", "merge", "distinct", "reassign", "snooze",
                                              "pass", "undo", "reinstate"}),
    "delivery profiles": ("store/fields.py", {"card", "text", "both", "auto"}),
}
# Kinds of SLA timer spelled as names: the steps of one owner are scheduler.actions.OWNER_STEPS.
NAMED_VOCABULARIES = {"an owner's ladder steps": ("scheduler/actions.py", {"REMIND", "ESCALATE", "REASSIGN"})}


def _collections(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 3:
            yield node


def test_each_vocabulary_is_written_once() -> None:
    problems = []
    for path in _source_files():
        rel = _rel(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _collections(tree):
            strings = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
            names = {e.id for e in node.elts if isinstance(e, ast.Name)}
            for what, (home, members) in VOCABULARIES.items():
                if rel != home and len(strings & members) >= 3:
                    problems.append(f"{rel}:{node.lineno}: {what} again (defined in {home})")
            for what, (home, members) in NAMED_VOCABULARIES.items():
                if rel != home and members <= names:
                    problems.append(f"{rel}:{node.lineno}: {what} again (defined in {home})")
    assert not problems, "\n".join(problems)


def test_the_architecture_map_names_every_package() -> None:
    """docs/architecture.md says where any behaviour lives: every package is on the map, and
    everything the map names as a path exists."""
    text = (ROOT / "docs/architecture.md").read_text(encoding="utf-8")
    packages = sorted({_rel(p.parent) for p in _source_files() if p.name == "__init__.py"})
    missing = [p for p in packages if f"{p}/" not in text]
    assert not missing, f"packages not on the map in docs/architecture.md: {missing}"
    named = set(re.findall(r"`((?:leadbot|store|crm|routing|identity|crm_bridge|bot|notifications|scheduler|sandbox|bench)/[\w/]*\w(?:\.py)?/?)`",
                           text))
    gone = sorted(n for n in named if not (ROOT / n.rstrip("/")).exists())
    assert not gone, f"docs/architecture.md names paths that do not exist: {gone}"


# Where a card copy is built, redrawn and a tap answered, the platform's own rules
# (bot/platforms/copies.py) decide how; these modules never ask which platform it is.
ASKS_THE_PLATFORM_RULES = ("bot/journey", "bot/actions", "bot/cards", "bot/handlers/card_actions.py")


def test_card_copies_follow_the_platform_rules_not_a_platform_name() -> None:
    problems = []
    for path in _source_files():
        rel = _rel(path)
        if not rel.startswith(ASKS_THE_PLATFORM_RULES):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                named = [s.value for s in sides if isinstance(s, ast.Constant) and s.value in ("wecom", "dingtalk")]
                if named:
                    problems.append(f"{rel}:{node.lineno}: compares with {named[0]!r}")
    assert not problems, "\n".join(problems)
