"""The `leadbot` command line, driven as an operator would."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main

REPS = """id,name,wecom_userid,dingtalk_userid,team,role,manager,regions,product_lines,weight,capacity,status,delivery
m1,周经理,zhou,,华东,manager,,上海;江苏,,1,0,active,card
r1,张三,zhangsan,,华东,rep,m1,上海,medical,2,20,active,auto
r2,李四,,dt_lisi,华东,rep,m1,江苏|浙江,,1,,on_leave,text
r3,坏行,,,华东,rep,m1,,,1,,active,card
r4,王五,wangwu,,华东,boss,m1,,,1,,active,card
r5,赵六,zhangsan,,华东,rep,m1,,,1,,active,card
"""

CUSTOMERS = """id,name,phone,email,company,title,wechat_unionid,wecom_external_userid,id_number,address,city,owner,行业
c1,王小明,138-0013-8000,WXM@Example.com,华为技术有限公司,采购经理,,,,,深圳,r1,通信
c2,Wang Xiaoming,+86 13800138000,,华为,,,,,,,,
c3,,,,,,,,,,,,
c4,陈静,021-6888 8888,chen@@bad,上海某某医院,,,wmABC,,,上海,nobody,医疗
"""


@pytest.fixture
def cfg(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    return path


def test_help_everywhere() -> None:
    runner = CliRunner()
    for args in ([], ["serve"], ["demo"], ["db"], ["db", "upgrade"], ["import"], ["dedupe"]):
        result = runner.invoke(main, [*args, "--help"])
        assert result.exit_code == 0, (args, result.output)
        assert "Usage:" in result.output


@pytest.mark.skipif(bool(os.environ.get("LEADBOT_TEST_DATABASE_URL")), reason="SQLite file behaviour")
def test_db_upgrade_creates_the_schema(cfg: Path) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("数据库已在版本 00")  # [server] language: zh by default


def test_import_reps_reports_created_updated_rejected(cfg: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LEADBOT_SERVER_LANGUAGE", "en")
    if os.environ.get("LEADBOT_TEST_DATABASE_URL"):
        pytest.skip("CLI imports write to the configured database; covered on SQLite")
    csv_file = tmp_path / "reps.csv"
    csv_file.write_text(REPS, encoding="utf-8")
    runner = CliRunner()
    first = runner.invoke(main, ["import", "reps", str(csv_file), "--config", str(cfg)])
    assert first.exit_code == 1, first.output  # done in part: some rows rejected
    assert "reps: 3 created, 0 updated, 3 rejected (6 rows)" in first.output
    assert "line 5: rejected (r3): needs a wecom_userid or a dingtalk_userid" in first.output
    assert "line 6: rejected (r4): role 'boss'" in first.output
    assert "line 7: rejected (r5): wecom_userid 'zhangsan' already belongs to rep r1" in first.output
    again = runner.invoke(main, ["import", "reps", str(csv_file), "--config", str(cfg)])
    assert "reps: 0 created, 3 updated" in again.output


def test_import_customers_in_gb18030_keeps_extra_columns(cfg: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LEADBOT_SERVER_LANGUAGE", "en")
    if os.environ.get("LEADBOT_TEST_DATABASE_URL"):
        pytest.skip("CLI imports write to the configured database; covered on SQLite")
    reps = tmp_path / "reps.csv"
    reps.write_text(REPS, encoding="utf-8")
    CliRunner().invoke(main, ["import", "reps", str(reps), "--config", str(cfg)])
    csv_file = tmp_path / "customers.csv"
    csv_file.write_bytes(CUSTOMERS.encode("gb18030"))
    result = CliRunner().invoke(main, ["import", "customers", str(csv_file), "--config", str(cfg)])
    assert result.exit_code == 1, result.output  # one row rejected
    assert "customers: 2 created, 1 updated, 1 rejected (4 rows)" in result.output
    assert "line 3: same phone as customer c1; merged into it" in result.output
    assert "line 4: rejected (c3): no name, company or identifier" in result.output
    assert "owner 'nobody' is not a known rep id" in result.output

    from store.db import create_engine
    from crm.sql_store import SqlCRMStore

    async def check() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/leadbot.db")
        store = SqlCRMStore(engine)
        c = await store.get_customer(1)
        assert c is not None and c.attributes["行业"] == "通信"
        assert ("phone", "+8613800138000") in c.identities
        assert ("email", "wxm@example.com") in c.identities
        assert c.owner_id is not None
        await engine.dispose()

    asyncio.run(check())


def _leadbot(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "leadbot"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_serve_with_a_bad_config_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[server]\nport = \"eighty\"\n", encoding="utf-8")
    result = _leadbot("serve", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == 'config: [server] port: expected an integer, got \'eighty\''


def test_bad_env_override_stops_start_up(tmp_path: Path) -> None:
    result = _leadbot("db", "upgrade", cwd=tmp_path, env={"LEADBOT_SLA_FIRST_TOUCH_REMIND": "soon"})
    assert result.returncode == 2
    assert "[sla] first_touch_remind" in result.stderr


def test_explain_and_outbox_commands(cfg: Path, tmp_path: Path) -> None:
    if os.environ.get("LEADBOT_TEST_DATABASE_URL"):
        pytest.skip("CLI commands use the configured database; covered on SQLite")
    from store.db import create_engine
    from store.dto import LeadInput
    from store.migrate import upgrade
    from routing.engine import Router
    from crm.sql_store import SqlCRMStore
    from leadbot.settings import settings_from_mapping

    async def seed() -> int:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/leadbot.db")
        await upgrade(engine)
        store = SqlCRMStore(engine)
        await store.import_reps([{"id": "r1", "name": "张三", "wecom_userid": "zs", "team": "T", "role": "rep"}])
        lead, _ = await store.create_lead(LeadInput(fields={"name": "客户"}))
        s = settings_from_mapping({"calendar": {"working_hours": "00:00-24:00", "working_days": [1, 2, 3, 4, 5, 6, 7]}},
                                  environ={})
        await Router(engine, s.assignment, s.calendar, store.clock).assign(lead.id)
        await engine.dispose()
        return lead.id

    lead_id = asyncio.run(seed())
    runner = CliRunner()
    out = runner.invoke(main, ["explain", str(lead_id), "--config", str(cfg)])
    assert out.exit_code == 0, out.output
    assert "张三" in out.output
    english = runner.invoke(main, ["explain", str(lead_id), "--lang", "en", "--config", str(cfg)])
    assert "张三" in english.output and english.output != out.output
    report = runner.invoke(main, ["outbox", "--config", str(cfg)])
    assert report.exit_code == 0 and report.output.startswith("outbox:")


async def test_a_serving_process_freezes_its_start_up_heap(aiohttp_client, engine, clock, settings) -> None:
    """`leadbot serve` wraps its app in for_serving: after start-up the heap built so far leaves
    the collector's view and young collections run less often."""
    import gc

    from bot.app import create_app, for_serving

    threshold = gc.get_threshold()
    gc.unfreeze()
    try:
        await aiohttp_client(for_serving(create_app(settings, clock=clock, engine=engine, start_workers=False)))
        assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] == 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
