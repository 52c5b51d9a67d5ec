import json

import structlog

from leadbot.logs import configure_logging, get_logger


def test_logs_are_json_lines_without_phones_or_secrets(capsys) -> None:
    configure_logging("json", "info")
    get_logger("t").info("lead.received", phone="13812345678", note="call 13812345678 now",
                         access_token="SECRET-TOKEN-VALUE", secret="abcdefgh")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "lead.received"
    assert "13812345678" not in line and "138****5678" in line
    assert "SECRET-TOKEN-VALUE" not in line and "abcdefgh" not in line
    structlog.reset_defaults()
