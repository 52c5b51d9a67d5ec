"""`leadbot reps sync` as an operator runs it, against the simulated platforms on loopback."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from tests.directory.conftest import seed_dingtalk, seed_wecom
from tests.e2e.conftest import AES_KEY, AGENT_ID, CORP_ID, SECRET, TOKEN


def test_help() -> None:
    result = CliRunner().invoke(main, ["reps", "sync", "--help"])
    assert result.exit_code == 0 and "--dry-run" in result.output and "--platform" in result.output


@pytest.mark.skipif(bool(os.environ.get("LEADBOT_TEST_DATABASE_URL")),
                    reason="the CLI writes to the configured database; the sync itself runs on PostgreSQL in test_sync")
async def test_reps_sync_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LEADBOT_SERVER_LANGUAGE", "en")
    from sandbox.dingtalk import DingTalkSandbox
    from sandbox.wecom import SimulatedWeCom

    wecom = SimulatedWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID, token=TOKEN, encoding_aes_key=AES_KEY)
    dingtalk = DingTalkSandbox()
    seed_wecom(wecom)
    seed_dingtalk(dingtalk)
    await wecom.start()
    await dingtalk.start()
    try:
        cfg = tmp_path / "config.toml"
        cfg.write_text(f'''[database]
url = "sqlite+aiosqlite:///{tmp_path}/leadbot.db"
[wecom]
corp_id = "{CORP_ID}"
agent_id = {AGENT_ID}
secret = "{SECRET}"
token = "{TOKEN}"
encoding_aes_key = "{AES_KEY}"
api_base = "{wecom.base_url}"
[dingtalk]
app_key = "{dingtalk.app_key}"
app_secret = "{dingtalk.app_secret}"
api_base = "{dingtalk.base}"
oapi_base = "{dingtalk.base}"
''', encoding="utf-8")

        def run(*args: str):
            # The command runs its own event loop; the sandboxes keep serving on this one.
            return asyncio.to_thread(CliRunner().invoke, main, ["reps", "sync", *args, "--config", str(cfg)])

        dry = await run("--dry-run")
        assert dry.exit_code == 0, dry.output
        assert "reps sync (wecom, dingtalk): 5 created, 0 updated, 0 left" in dry.output
        assert "dry run: nothing was changed" in dry.output
        assert "wecom: 华东销售 (#2): 3 member(s)" in dry.output  # progress, one line per department
        first = await run()
        assert first.exit_code == 0, first.output
        assert "5 created" in first.output and "created 张三 (wecom:zhangsan)" in first.output
        wecom.remove_member("lisi")
        only_wecom = await run("--platform", "wecom")
        assert only_wecom.exit_code == 0, only_wecom.output
        assert "reps sync (wecom): 0 created, 0 updated, 1 left, 3 unchanged" in only_wecom.output
        assert "left 李四 (wecom:lisi): no longer in the WeCom directory" in only_wecom.output
        assert "dingtalk:" not in only_wecom.output.split("reps sync")[0]
        bare = tmp_path / "bare.toml"
        bare.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/bare.db"\n', encoding="utf-8")
        missing = await asyncio.to_thread(CliRunner().invoke, main, ["reps", "sync", "--config", str(bare)])
        assert missing.exit_code == 2 and "missing" in missing.output
    finally:
        await wecom.stop()
        await dingtalk.stop()
