from __future__ import annotations

from pathlib import Path

import pytest

from leadbot.durations import DurationError, parse_duration
from leadbot.settings import ConfigError, load_settings, settings_from_mapping


def test_defaults_without_any_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(None, environ={})
    assert s.database.url == "sqlite+aiosqlite:///leadbot.db"
    assert s.wecom is None and s.dingtalk is None
    assert s.calendar.timezone == "Asia/Shanghai"
    assert s.source == "built-in defaults"


def test_local_config_toml_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_text('[server]\nport = 9001\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_settings(None, environ={}).server.port == 9001


def test_env_var_names_the_file_and_overrides_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "x.toml"
    cfg.write_text('[server]\nport = 9001\n[intake]\napi_tokens = ["a"]\n', encoding="utf-8")
    s = load_settings(None, environ={"LEADBOT_CONFIG": str(cfg), "LEADBOT_SERVER_PORT": "9100",
                                     "LEADBOT_INTAKE_API_TOKENS": "t1, t2", "LEADBOT_SLA_WORKING_TIME": "false"})
    assert s.server.port == 9100
    assert s.intake.api_tokens == ("t1", "t2")
    assert s.sla.working_time is False


def test_env_can_switch_a_platform_on() -> None:
    env = {"LEADBOT_WECOM_CORP_ID": "ww1", "LEADBOT_WECOM_TOKEN": "t",
           "LEADBOT_WECOM_ENCODING_AES_KEY": "a" * 43, "LEADBOT_WECOM_AGENT_ID": "1000002"}
    s = settings_from_mapping({}, environ=env)
    assert s.wecom is not None and s.wecom.agent_id == 1000002


@pytest.mark.parametrize("data, needle", [
    ({"server": {"prot": 1}}, "[server] prot: unknown key (did you mean port?)"),
    ({"server": {"port": "eighty"}}, "[server] port: expected an integer"),
    ({"server": {"language": "fr"}}, "[server] language"),
    ({"wecom": {"corp_id": "x", "token": "t"}}, "[wecom] encoding_aes_key: missing"),
    ({"wecom": {"corp_id": "x", "token": "t", "encoding_aes_key": "short"}}, "[wecom] encoding_aes_key: must be 43"),
    ({"sla": {"first_touch_remind": "soon"}}, "[sla] first_touch_remind: not a duration"),
    ({"calendar": {"timezone": "Mars/Olympus"}}, "[calendar] timezone: unknown timezone"),
    ({"calendar": {"working_hours": "9-18"}}, "[calendar] working_hours"),
    ({"database": {"url": "mysql://x"}}, "[database] url"),
    ({"severs": {}}, "[severs]: unknown section (did you mean [server]?)"),
    ({"intake": {"api_tokens": "abc"}}, "[intake] api_tokens: expected a list"),
    ({"delivery": {"lease_seconds": 10, "send_timeout_seconds": 20}}, "[delivery] lease_seconds: must be longer than"),
    ({"delivery": {"send_timeout_seconds": 0}}, "[delivery] send_timeout_seconds: must be more than 0"),
])
def test_bad_config_names_the_key(data: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        settings_from_mapping(data, environ={})
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_env_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"\[server\] port: expected an integer"):
        settings_from_mapping({}, environ={"LEADBOT_SERVER_PORT": "x"})


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, environ={})
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_settings_are_frozen() -> None:
    s = settings_from_mapping({}, environ={})
    with pytest.raises(AttributeError):
        s.server.port = 1  # type: ignore[misc]


def test_example_config_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    s = load_settings(example, environ={})
    assert s.wecom is not None and s.dingtalk is not None
    assert s.intake.api_tokens


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("4m", 240), ("2h", 7200), ("3d", 259200),
                                           ("1h30m", 5400), (45, 45), ("10", 10)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "soon", "4x", "-1", "m4"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


def test_example_config_documents_every_key() -> None:
    import dataclasses
    import re

    from leadbot.settings import _SECTIONS

    text = (Path(__file__).resolve().parents[2] / "config.example.toml").read_text(encoding="utf-8")
    missing = []
    for section, cls in _SECTIONS.items():
        for f in dataclasses.fields(cls):
            if not re.search(rf"^#?\s*\[?{re.escape(f.name)}\b", text, re.MULTILINE) and \
                    f"[{section}.{f.name}]" not in text:
                missing.append(f"[{section}] {f.name}")
    assert not missing, missing
