"""Identity resolution, the store and the imports call one another in one direction only: no
import circle (deferred imports inside functions count too) and no private name reached across
files (issue #21)."""

from __future__ import annotations

import ast
from itertools import permutations
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("identity.service", "identity.merge", "identity.customers",
           "identity.company", "identity.normalize", "identity.places",
           "identity.matcher", "identity.index", "identity.dedupe",
           "crm.sql_store",
           "crm.importing")


def test_no_import_circle_between_identity_the_store_and_the_imports() -> None:
    graph = grimp.build_graph("identity", "crm", exclude_type_checking_imports=True)
    circles = [(a, b) for a, b in permutations(MODULES, 2)
               if graph.find_shortest_chain(importer=a, imported=b) and graph.find_shortest_chain(importer=b, imported=a)]
    assert circles == []


def test_no_private_name_is_imported_from_another_file() -> None:
    reached: list[str] = []
    files = [*(ROOT / "identity").glob("*.py"), ROOT / "crm" / "sql_store.py",
             ROOT / "crm" / "importing.py", *(ROOT / "bench").glob("identity*.py")]
    assert len(files) > 10
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(("identity", "crm")):
                reached += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
    assert reached == []
