"""DESIGN.md's dependency rules, enforced by import-linter (contracts in pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    exe = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_required_top_level_layout() -> None:
    for name in ("bot", "bot/handlers", "bot/cards", "notifications", "crm_bridge", "scheduler", "tests"):
        assert (ROOT / name).is_dir(), name
    for name in ("config.example.toml", "pyproject.toml", "README.md"):
        assert (ROOT / name).is_file(), name
