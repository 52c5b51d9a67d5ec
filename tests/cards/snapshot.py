"""Snapshot assertions for the pure renderers.

Snapshots live in tests/cards/snapshots/. A missing snapshot is written only when
UPDATE_SNAPSHOTS=1 (to refresh one, delete it and rerun with the variable set); otherwise the
rendered value must equal the file, and a failure shows a unified diff.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import pytest

SNAPSHOT_DIR = Path(__file__).parent / "snapshots"


def _serialise(value: Any) -> tuple[str, str]:
    if isinstance(value, str):
        return value + "\n", ".txt"
    return json.dumps(value, ensure_ascii=False, indent=2) + "\n", ".json"


def assert_snapshot(name: str, value: Any) -> None:
    text, ext = _serialise(value)
    path = SNAPSHOT_DIR / f"{name}{ext}"
    if not path.exists():
        if os.environ.get("UPDATE_SNAPSHOTS") == "1":
            SNAPSHOT_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        pytest.fail(f"snapshot {path.name} is missing; run with UPDATE_SNAPSHOTS=1 to create it")
    expected = path.read_text(encoding="utf-8")
    if expected != text:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), text.splitlines(keepends=True),
            fromfile=f"snapshots/{path.name}", tofile="rendered"))
        pytest.fail(f"snapshot {path.name} differs:\n{diff}", pytrace=False)
