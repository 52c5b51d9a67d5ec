"""Every command's exit code against the README's table: 0 done, 1 done in part or not found
(or failed while running), 2 usage or configuration error. And the CSV problems those codes
summarise, reported per row with the row's line number."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, main
from crm.csv_files import parse_csv_text

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    if os.environ.get("LEADBOT_TEST_DATABASE_URL"):
        pytest.skip("CLI commands use the configured database; covered on SQLite")
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/cli.db"\n', encoding="utf-8")
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_the_readme_documents_the_three_codes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| ([012]) \| ([^|]+) \|", readme, re.M))
    assert set(rows) == {"0", "1", "2"}
    assert "done" in rows["0"] and "not found" in rows["1"] and "usage" in rows["2"]
    assert (EXIT_OK, EXIT_PARTIAL, EXIT_USAGE) == (0, 1, 2)


def test_usage_errors_are_2(tmp_path: Path) -> None:
    assert run("import", "customers")[0] == EXIT_USAGE  # missing argument (click)
    assert run("explain", "abc")[0] == EXIT_USAGE
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = \"eighty\"\n", encoding="utf-8")
    for args in (["db", "upgrade"], ["explain", "1"], ["outbox"], ["reps", "leave", "r1"],
                 ["crm", "pull"], ["import", "reps", str(bad)]):
        code, out = run(*args, "--config", str(bad))
        assert code == EXIT_USAGE, (args, out)
        assert "[server] port" in out


def test_db_upgrade_and_outbox_are_0(cfg: Path) -> None:
    assert run("db", "upgrade", "--config", str(cfg))[0] == EXIT_OK
    assert run("outbox", "--config", str(cfg))[0] == EXIT_OK


def test_explain_a_missing_lead_is_1_with_a_clear_message(cfg: Path) -> None:
    code, out = run("explain", "999", "--config", str(cfg))
    assert code == EXIT_PARTIAL
    assert "没有编号为 #999 的线索" in out
    code, out = run("explain", "999", "--lang", "en", "--config", str(cfg))
    assert code == EXIT_PARTIAL and "There is no lead #999." in out


def test_explain_a_routed_lead_is_0(cfg: Path, tmp_path: Path) -> None:
    from store.db import create_engine
    from store.dto import LeadInput
    from store.migrate import upgrade
    from routing.engine import Router
    from crm.sql_store import SqlCRMStore
    from leadbot.settings import settings_from_mapping

    async def seed() -> tuple[int, int]:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/cli.db")
        await upgrade(engine)
        store = SqlCRMStore(engine)
        await store.import_reps([{"id": "r1", "name": "张三", "wecom_userid": "zs", "team": "T", "role": "rep"}])
        routed, _ = await store.create_lead(LeadInput(fields={"name": "客户"}))
        unrouted, _ = await store.create_lead(LeadInput(fields={"name": "客户二"}))
        s = settings_from_mapping({"calendar": {"working_hours": "00:00-24:00",
                                                "working_days": [1, 2, 3, 4, 5, 6, 7]}}, environ={})
        await Router(engine, s.assignment, s.calendar, store.clock).assign(routed.id)
        await engine.dispose()
        return routed.id, unrouted.id

    routed, unrouted = asyncio.run(seed())
    assert run("explain", str(routed), "--config", str(cfg))[0] == EXIT_OK
    code, out = run("explain", str(unrouted), "--config", str(cfg))
    assert code == EXIT_PARTIAL and "还没有分配记录" in out


def test_reps_leave_an_unknown_rep_is_1(cfg: Path, monkeypatch) -> None:
    assert run("db", "upgrade", "--config", str(cfg))[0] == EXIT_OK
    code, out = run("reps", "leave", "nobody", "--config", str(cfg))
    assert code == EXIT_PARTIAL and "没有编号为 'nobody' 的销售" in out
    monkeypatch.setenv("LEADBOT_SERVER_LANGUAGE", "en")
    code, out = run("reps", "leave", "nobody", "--config", str(cfg))
    assert code == EXIT_PARTIAL and "no rep with id 'nobody'" in out


def test_reps_sync_and_crm_without_their_config_are_2(cfg: Path) -> None:
    assert run("reps", "sync", "--config", str(cfg))[0] == EXIT_USAGE
    assert run("crm", "pull", "--config", str(cfg))[0] == EXIT_USAGE
    assert run("crm", "push", "--since", "2026-01-01", "--config", str(cfg))[0] == EXIT_USAGE


def test_import_clean_is_0_rejected_rows_1_not_csv_2(cfg: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LEADBOT_SERVER_LANGUAGE", "en")
    good = tmp_path / "good.csv"
    good.write_text("id,name,phone\nc1,王小明,13800138000\n", encoding="utf-8")
    assert run("import", "customers", str(good), "--config", str(cfg))[0] == EXIT_OK
    partial = tmp_path / "partial.csv"
    partial.write_text("id,name,phone\nc2,李四,13800138001\nc3,,\n", encoding="utf-8")
    code, out = run("import", "customers", str(partial), "--config", str(cfg))
    assert code == EXIT_PARTIAL and "line 3: rejected (c3)" in out
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81\x30\xff")
    code, out = run("import", "customers", str(binary), "--config", str(cfg))
    assert code == EXIT_USAGE and "neither UTF-8 nor GB18030" in out


def test_a_gb18030_row_with_an_unclosed_quote_is_reported_not_imported(cfg: Path, tmp_path: Path,
                                                                       monkeypatch) -> None:
    monkeypatch.setenv("LEADBOT_SERVER_LANGUAGE", "en")
    text = ("id,name,phone,company\n"
            "c1,张三,13800000001,\"北京某某公司\n"   # the quote never closes
            "c2,李四,13800000002,上海某某公司\n"
            "c3,王五,13800000003,广州某某公司,多余\n")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(text.encode("gb18030"))
    code, out = run("import", "customers", str(bad), "--config", str(cfg))
    assert code == EXIT_PARTIAL, out
    assert "customers: 1 created, 0 updated, 2 rejected (3 rows)" in out
    assert "line 2: rejected: unclosed quote" in out
    assert "line 4: rejected: 5 fields where the header has 4" in out

    from store.db import create_engine
    from crm.sql_store import SqlCRMStore

    async def names() -> list[str]:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/cli.db")
        try:
            found = [await SqlCRMStore(engine).get_customer(i) for i in (1, 2, 3)]
        finally:
            await engine.dispose()
        return [c.display_name for c in found if c is not None]

    assert asyncio.run(names()) == ["李四"]  # neither 张三 (nor the lines it would swallow) nor 王五


def test_rows_keep_their_own_line_numbers() -> None:
    rows = parse_csv_text('id,address\n1,"多行\n地址"\n\n2,"x\n3,y\n')
    assert [dict(r) for r in rows] == [{"id": "1", "address": "多行\n地址"}, {"id": "3", "address": "y"}]
    assert rows.lines == [2, 6]
    assert [(p.line, p.reason.split(":")[0]) for p in rows.problems] == [(5, "unclosed quote")]


def test_dedupe_0_with_pairs_1_with_broken_rows_2_with_no_known_column(cfg: Path, tmp_path: Path,
                                                                       monkeypatch) -> None:
    monkeypatch.setenv("LEADBOT_SERVER_LANGUAGE", "en")
    src = tmp_path / "in.csv"
    out = tmp_path / "pairs.csv"
    src.write_text("id,name,phone\n1,张三,13800000001\n2,张三,13800000001\n", encoding="utf-8")
    code, text = run("dedupe", str(src), "--out", str(out), "--config", str(cfg))
    assert code == EXIT_OK, text
    assert "2 rows: 1 pair in 1 cluster written" in text  # not "1 pairs in 1 clusters"
    src.write_text("id,name,phone\n1,张三,13800000001\n2,张三,\"13800000001\n", encoding="utf-8")
    code, text = run("dedupe", str(src), "--out", str(out), "--config", str(cfg))
    assert code == EXIT_PARTIAL and "line 3: rejected: unclosed quote" in text
    src.write_text("客户编号,备注\n1,x\n2,y\n", encoding="utf-8")
    out.unlink()
    code, text = run("dedupe", str(src), "--out", str(out), "--config", str(cfg))
    assert code == EXIT_USAGE
    assert "none of the columns dedupe compares" in text and "客户编号" in text
    assert not out.exists()


def test_a_bad_environment_override_names_the_variable(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "leadbot"
    for var, value in (("LEADBOT_SERVER_PORT", "eighty"), ("LEADBOT_SERVER_PORT", "70000"),
                       ("LEADBOT_SERVER_PROT", "80")):
        result = subprocess.run([str(exe), "db", "upgrade"], cwd=tmp_path, capture_output=True, text=True,
                                timeout=60, env={**os.environ, var: value})
        assert result.returncode == EXIT_USAGE, result.stderr
        assert f"(from the environment variable {var})" in result.stderr
    assert not (tmp_path / "leadbot.db").exists()


def test_the_command_line_speaks_the_configured_language(cfg: Path, tmp_path: Path, monkeypatch) -> None:
    """The CLI's own words follow [server] language (default zh) and LEADBOT_SERVER_LANGUAGE,
    whole in one language, with English plurals right."""
    from tests.cards.test_one_language_per_message import problems

    src, out = tmp_path / "in.csv", tmp_path / "pairs.csv"
    src.write_text("id,name,phone\n1,张三,13800000001\n2,张三,13800000001\n3,李四,13900000002\n", encoding="utf-8")
    code, text = run("dedupe", str(src), "--out", str(out), "--config", str(cfg))
    assert code == EXIT_OK and "3 行：1 对，分为 1 组" in text, text
    assert not problems(text.replace(str(out), ""), "zh"), text
    english = tmp_path / "en.toml"
    english.write_text(cfg.read_text(encoding="utf-8") + '[server]\nlanguage = "en"\n', encoding="utf-8")
    code, text = run("dedupe", str(src), "--out", str(out), "--config", str(english))
    assert "3 rows: 1 pair in 1 cluster written" in text and not problems(text.replace(str(out), ""), "en"), text
    monkeypatch.setenv("LEADBOT_SERVER_LANGUAGE", "zh")  # the environment overrides the file, as for any key
    assert "3 行：1 对" in run("dedupe", str(src), "--out", str(out), "--config", str(english))[1]
    code, text = run("duty", "show", "--config", str(cfg))
    assert code == EXIT_OK and not problems(text, "zh"), text
