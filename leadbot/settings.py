"""Typed, frozen settings loaded once from TOML plus ``LEADBOT_<SECTION>_<KEY>`` overrides.

Every key is declared here with its type and default, so a typo or a wrong type is caught at
start-up with one line that names the key (``ConfigError``), instead of surfacing hours later.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import re
import json
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leadbot.durations import DurationError, parse_duration


class ConfigError(ValueError):
    """A configuration problem; str() is the one line shown to the operator."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    language: str = "zh"
    replay_window_seconds: int = 300
    max_body_bytes: int = 1024 * 1024
    secret_key: str = ""
    metrics_token: str = ""  # empty: /metrics answers loopback clients only
    read_timeout_seconds: float = 10.0  # to send the request headers, and then the body
    log_format: str = "auto"
    log_level: str = "info"

    def validate(self) -> None:
        _check(self.language in ("zh", "en"), "server", "language", "must be \"zh\" or \"en\"")
        _check(0 < self.port < 65536, "server", "port", "must be between 1 and 65535")
        _check(self.replay_window_seconds >= 0, "server", "replay_window_seconds", "must be >= 0")
        _check(self.max_body_bytes >= 1024, "server", "max_body_bytes", "must be at least 1024")
        _check(0 < self.read_timeout_seconds <= 300, "server", "read_timeout_seconds", "must be between 0 and 300")
        _check(self.log_format in ("auto", "json", "console"), "server", "log_format",
               "must be auto, json or console")
        _check(self.log_level in ("debug", "info", "warning", "error"), "server", "log_level",
               "must be debug, info, warning or error")
        _check(not self.public_url or self.public_url.startswith(("http://", "https://")),
               "server", "public_url", "must start with http:// or https://")


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = "sqlite+aiosqlite:///leadbot.db"
    echo: bool = False

    def validate(self) -> None:
        _check(self.url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")),
               "database", "url", "must be sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST/DB")


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    # A process sending an outbox row holds it this long (renewed while it works); a process that
    # dies mid-send leaves its rows to the others only when the lease runs out, so this is how
    # long those messages wait after a crash.
    lease_seconds: float = 60.0
    # One platform call may take this long before it counts as failed (and is retried later).
    send_timeout_seconds: float = 20.0

    def validate(self) -> None:
        _check(self.send_timeout_seconds > 0, "delivery", "send_timeout_seconds", "must be more than 0")
        _check(self.lease_seconds > self.send_timeout_seconds, "delivery", "lease_seconds",
               f"must be longer than send_timeout_seconds ({self.send_timeout_seconds:g}), or another"
               " process could take over a row whose send is still running and send it twice")


@dataclass(frozen=True, slots=True)
class WeComSettings:
    corp_id: str
    token: str
    encoding_aes_key: str
    agent_id: int = 0
    secret: str = ""
    api_base: str = "https://qyapi.weixin.qq.com"
    manager_robot_key: str = ""
    write_back_remark: bool = False
    welcome_text: str = ""

    def validate(self) -> None:
        _check(len(self.encoding_aes_key) == 43, "wecom", "encoding_aes_key", "must be 43 characters")
        # externalcontact/send_welcome_msg takes at most 4000 bytes of text.
        _check(len(self.welcome_text.encode("utf-8")) <= 4000, "wecom", "welcome_text",
               "must be at most 4000 bytes (UTF-8)")
        _check(bool(self.token), "wecom", "token", "must not be empty")
        _check(bool(self.corp_id), "wecom", "corp_id", "must not be empty")


@dataclass(frozen=True, slots=True)
class DingTalkSettings:
    app_key: str
    app_secret: str
    token: str = ""
    aes_key: str = ""
    corp_id: str = ""
    robot_code: str = ""
    agent_id: int = 0
    card_template_id: str = ""
    card_callback_secret: str = ""
    api_base: str = "https://api.dingtalk.com"
    oapi_base: str = "https://oapi.dingtalk.com"
    manager_robot_webhook: str = ""
    manager_robot_secret: str = ""
    stream: bool = False

    def validate(self) -> None:
        _check(not self.aes_key or len(self.aes_key) == 43, "dingtalk", "aes_key", "must be 43 characters")
        _check(bool(self.app_key), "dingtalk", "app_key", "must not be empty")

    @property
    def receive_ids(self) -> tuple[str, ...]:
        """Console subscriptions encrypt with the AppKey, legacy ones with the CorpId."""
        return tuple(x for x in (self.app_key, self.corp_id) if x)


DEFAULT_SOURCE = "default"
_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


@dataclass(frozen=True, slots=True)
class IntakeSettings:
    """Lead sources: each named source has its own tokens and sees only its own leads and its
    own Idempotency-Keys. `api_tokens` is the source named "default" (kept for older configs)."""

    api_tokens: tuple[str, ...] = ()
    sources: Mapping[str, Any] = field(default_factory=dict)
    max_body_bytes: int = 1024 * 1024

    def validate(self) -> None:
        seen: set[str] = set(self.api_tokens)
        _check(len(seen) == len(self.api_tokens), "intake", "api_tokens", "a token is listed twice")
        _check(all(t.strip() for t in self.api_tokens), "intake", "api_tokens", "tokens must not be empty")
        for name, source in self.sources.items():
            key = f"sources.{name}"
            _check(bool(_SOURCE_NAME.match(str(name))), "intake", key,
                   "source names are 1-32 of a-z, 0-9, _ and -, starting with a letter or digit")
            _check(not (name == DEFAULT_SOURCE and self.api_tokens), "intake", key,
                   "api_tokens already define the default source; list its tokens in one place")
            _check(isinstance(source, Mapping), "intake", key, "must be a table with tokens = [...]")
            unknown = set(source) - {"tokens"}
            _check(not unknown, "intake", f"{key}.{next(iter(unknown), '')}", "unknown key (known: tokens)")
            tokens = source.get("tokens", ())
            _check(isinstance(tokens, (list, tuple)) and bool(tokens)
                   and all(isinstance(t, str) and t.strip() for t in tokens),
                   "intake", f"{key}.tokens", "must be a non-empty list of non-empty strings")
            for token in tokens:
                _check(token not in seen, "intake", f"{key}.tokens", "a token belongs to one source only")
                seen.add(token)

    @property
    def source_tokens(self) -> Mapping[str, tuple[str, ...]]:
        """Source name -> its tokens; api_tokens are the "default" source."""
        out: dict[str, tuple[str, ...]] = {}
        if self.api_tokens:
            out[DEFAULT_SOURCE] = tuple(self.api_tokens)
        for name, source in self.sources.items():
            out[str(name)] = tuple(source.get("tokens", ()))
        return out


# How a rule picks among its reps (routing/decide.py implements each): defined here,
# once, because the config is checked at start, before routing is built.
ROUTING_STRATEGIES = ("weighted_round_robin", "least_loaded", "capped")


@dataclass(frozen=True, slots=True)
class AssignmentSettings:
    rules: tuple[Mapping[str, Any], ...] = ()
    default_strategy: str = "weighted_round_robin"
    miss_streak_limit: int = 3
    miss_streak_recover: int = 2
    active_within_minutes: int = 0

    def validate(self) -> None:
        _check(self.default_strategy in ROUTING_STRATEGIES, "assignment", "default_strategy",
               f"must be {', '.join(ROUTING_STRATEGIES[:-1])} or {ROUTING_STRATEGIES[-1]}")
        for i, rule in enumerate(self.rules):
            if not isinstance(rule, Mapping):
                raise ConfigError(f"config: [assignment] rules[{i}]: must be a table")


@dataclass(frozen=True, slots=True)
class SlaSettings:
    first_touch_remind: str = "2m"
    first_touch_escalate: str = "4m"
    first_touch_reassign: str = "30m"
    pool_return: str = "24h"
    working_time: bool = True
    silence_flag: str = "72h"
    stage_limits: Mapping[str, str] = field(default_factory=dict)
    sweep_interval_seconds: float = 1.0
    stage_limit_default: str = "10d"  # for stages not in stage_limits; "0" turns the alert off
    pool_recycle: str = "4h"  # unclaimed in the pool this long: routed again or escalated
    digest_time: str = "18:00"  # daily manager digest, calendar timezone, on working days
    snooze_max: str = "2h"  # the longest a rep may push their own reminders back with one tap

    def validate(self) -> None:
        for key in ("first_touch_remind", "first_touch_escalate", "first_touch_reassign",
                    "pool_return", "silence_flag", "stage_limit_default", "pool_recycle", "snooze_max"):
            _duration("sla", key, getattr(self, key))
        _check(_is_hhmm(self.digest_time) and int(self.digest_time.partition(":")[0]) < 24, "sla", "digest_time",
               'must look like "18:00"')
        _check(self.sweep_interval_seconds > 0, "sla", "sweep_interval_seconds", "must be > 0")
        for stage, value in self.stage_limits.items():
            _duration("sla", f"stage_limits.{stage}", value)

    def seconds(self, key: str) -> float:
        return parse_duration(getattr(self, key)).total_seconds()


DEFAULT_STAGES: tuple[Mapping[str, Any], ...] = (
    {"name": "线索验证", "gates": []},
    {"name": "痛点诊断", "gates": ["needs_document"]},
    {"name": "方案共创", "gates": ["decision_chain"]},
    {"name": "价值共识", "gates": ["proposal"]},
    {"name": "签约交付", "gates": ["contract"]},
)


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    stages: tuple[Mapping[str, Any], ...] = DEFAULT_STAGES

    def validate(self) -> None:
        names = [s.get("name") for s in self.stages if isinstance(s, Mapping)]
        _check(len(names) == len(self.stages) and all(isinstance(n, str) and n for n in names),
               "pipeline", "stages", "every stage needs a name")
        _check(len(set(names)) == len(names), "pipeline", "stages", "stage names must be unique")

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s["name"] for s in self.stages)


_TEAM_CALENDAR_KEYS = ("timezone", "working_hours", "working_days", "holidays", "extra_workdays")


@dataclass(frozen=True, slots=True)
class CalendarSettings:
    timezone: str = "Asia/Shanghai"
    working_hours: str = "09:00-18:00"
    working_days: tuple[int, ...] = (1, 2, 3, 4, 5)
    holidays: tuple[str, ...] = ()
    extra_workdays: tuple[str, ...] = ()
    quiet_hours_break_for_escalations: bool = True
    # A team working elsewhere or otherwise: [calendar.teams."NAME"] overrides any of timezone,
    # working_hours, working_days, holidays, extra_workdays for that team (routing, its SLA
    # clocks, quiet hours of its reps, times shown about its leads). Not part of eq/hash: a
    # calendar is its own hours; the team tables make other calendars (for_team).
    teams: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def for_team(self, team: str) -> "CalendarSettings":
        """The calendar of `team`: this one with the team's overrides (itself when it has none)."""
        override = self.teams.get(team) if team else None
        if not override:
            return self
        values = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in override.items()}
        return dataclasses.replace(self, teams={}, **values)

    def validate(self) -> None:
        for team, override in self.teams.items():
            if not isinstance(override, Mapping):
                raise ConfigError(f"config: [calendar] teams.{team}: must be a table")
            for key in override:
                _check(key in _TEAM_CALENDAR_KEYS, "calendar", f"teams.{team}.{key}",
                       f"unknown key (a team may set {', '.join(_TEAM_CALENDAR_KEYS)})")
            try:
                self.for_team(team).validate()
            except ConfigError as e:
                raise ConfigError(str(e).replace("[calendar] ", f"[calendar] teams.{team}.", 1)) from None
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"config: [calendar] timezone: unknown timezone {self.timezone!r}") from None
        start, sep, end = self.working_hours.partition("-")
        ok = bool(sep) and all(_is_hhmm(x) for x in (start, end)) and start < end
        _check(ok, "calendar", "working_hours", 'must look like "09:00-18:00"')
        _check(all(1 <= d <= 7 for d in self.working_days), "calendar", "working_days",
               "days are 1 (Monday) to 7 (Sunday)")
        from leadbot.workcal import CalendarError, WorkCalendar

        try:  # holidays / extra_workdays dates and ranges
            WorkCalendar.from_settings(self)
        except CalendarError as e:
            raise ConfigError(str(e)) from None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class DutySettings:
    """[duty]: who takes leads outside working hours (值班). A team with on-duty reps gets its
    off-hours leads sent to the one on duty at once; a team without waits for its next working
    window, when the lead is assigned to whoever is on shift then. Managers change the duty
    for their team with the text command "值班 NAME…" or `leadbot duty set`."""

    reps: tuple[str, ...] = ()  # rotation for leads of rules without a team (rep ids, in turn)
    teams: Mapping[str, Any] = field(default_factory=dict)  # team name -> [rep ids], in turn
    only_urgent: bool = False  # true: only leads of rules with urgent = true go to the duty rep

    def validate(self) -> None:
        for team, reps in self.teams.items():
            _check(isinstance(reps, (tuple, list)) and all(isinstance(r, str) and r for r in reps),
                   "duty", f"teams.{team}", "must be a list of rep ids")

    def rotation(self, team: str) -> tuple[str, ...]:
        return tuple(self.teams.get(team, ())) if team else self.reps


DEFAULT_FIELD_OWNERS: Mapping[str, str] = types.MappingProxyType({
    "name": "crm", "company": "crm", "title": "crm", "amount": "crm", "phone": "crm", "email": "crm",
    "owner": "leadbot", "stage": "leadbot", "status": "leadbot", "sla": "leadbot",
})


@dataclass(frozen=True, slots=True)
class CrmBridgeSettings:
    """[crm_bridge]: keeps an existing CRM in step (crm_bridge). Absent = bridge off."""

    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str = ""
    webhook_timeout_seconds: float = 10.0
    api_tokens: tuple[str, ...] = ()  # empty: the [intake] api_tokens are accepted
    field_owners: Mapping[str, str] = field(default_factory=dict)  # merged over DEFAULT_FIELD_OWNERS
    pull_url: str = ""
    pull_token: str = ""
    page_size: int = 100

    def validate(self) -> None:
        for url in self.webhook_urls:
            _check(url.startswith(("http://", "https://")), "crm_bridge", "webhook_urls",
                   f"{url!r} must start with http:// or https://")
        _check(not self.webhook_urls or len(self.webhook_secret) >= 16, "crm_bridge", "webhook_secret",
               "must be at least 16 characters when webhook_urls are set")
        _check(0 < self.webhook_timeout_seconds < 20, "crm_bridge", "webhook_timeout_seconds",
               "must be between 0 and 20 (below the outbox send timeout)")
        for name, owner in self.field_owners.items():
            _check(owner in ("crm", "leadbot", "shared"), "crm_bridge", f"field_owners.{name}",
                   "must be crm, leadbot or shared")
        _check(not self.pull_url or self.pull_url.startswith(("http://", "https://")), "crm_bridge", "pull_url",
               "must start with http:// or https://")
        _check(1 <= self.page_size <= 1000, "crm_bridge", "page_size", "must be between 1 and 1000")

    @property
    def owners(self) -> Mapping[str, str]:
        return {**DEFAULT_FIELD_OWNERS, **self.field_owners}


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    wecom: WeComSettings | None = None
    dingtalk: DingTalkSettings | None = None
    intake: IntakeSettings = field(default_factory=IntakeSettings)
    assignment: AssignmentSettings = field(default_factory=AssignmentSettings)
    sla: SlaSettings = field(default_factory=SlaSettings)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    calendar: CalendarSettings = field(default_factory=CalendarSettings)
    duty: DutySettings = field(default_factory=DutySettings)
    crm_bridge: CrmBridgeSettings | None = None
    source: str = "built-in defaults"
    # The sections the config file or the environment set (the rest are built-in defaults):
    # `leadbot serve` says whether the calendar in force is the built-in one.
    configured: frozenset[str] = frozenset()

    def replace(self, **sections: Any) -> "Settings":
        return dataclasses.replace(self, **sections)


_SECTIONS: dict[str, type] = {
    "server": ServerSettings,
    "database": DatabaseSettings,
    "delivery": DeliverySettings,
    "wecom": WeComSettings,
    "dingtalk": DingTalkSettings,
    "intake": IntakeSettings,
    "assignment": AssignmentSettings,
    "sla": SlaSettings,
    "pipeline": PipelineSettings,
    "calendar": CalendarSettings,
    "duty": DutySettings,
    "crm_bridge": CrmBridgeSettings,
}
# Sections whose absence switches a platform off rather than taking defaults.
_OPTIONAL_SECTIONS = {"wecom", "dingtalk", "crm_bridge"}


def _check(ok: bool, section: str, key: str, problem: str) -> None:
    if not ok:
        raise ConfigError(f"config: [{section}] {key}: {problem}")


def _duration(section: str, key: str, value: str) -> None:
    try:
        parse_duration(value)
    except DurationError as e:
        raise ConfigError(f"config: [{section}] {key}: {e}") from None


def _is_hhmm(text: str) -> bool:
    hh, sep, mm = text.partition(":")
    return bool(sep) and hh.isdigit() and mm.isdigit() and 0 <= int(hh) <= 24 and 0 <= int(mm) < 60


def _coerce(section: str, key: str, hint: Any, value: Any, from_env: bool) -> Any:
    """Turns a TOML (or environment string) value into the declared type, or names the key."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    where = f"config: [{section}] {key}"
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _coerce(section, key, inner[0], value, from_env)
    if hint is bool:
        if from_env and isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int or hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if isinstance(value, (int, float)) and (hint is float or isinstance(value, int)):
            return hint(value)
        if from_env and isinstance(value, str):
            try:
                return hint(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected {'an integer' if hint is int else 'a number'}, got {value!r}")
    if hint is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not from_env:
            # TOML users write port-like ids unquoted (agent_id = 1000002 is declared int, but
            # e.g. corp_id must be text); accepting numbers as text avoids a pointless error.
            return str(value)
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected text, got {value!r}")
    if origin is tuple:
        if from_env and isinstance(value, str):
            value = _env_list(value, where)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(value if item is Any else [_coerce(section, key, item, v, from_env) for v in value])
    if origin in (Mapping, dict, collections.abc.Mapping) or hint is Mapping:
        if from_env and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ConfigError(f"{where}: expected a JSON object in the environment variable") from None
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return _freeze(value)
    return value


def _env_list(value: str, where: str) -> list[Any]:
    value = value.strip()
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a JSON list or comma-separated values") from None
        return parsed
    return [v.strip() for v in value.split(",") if v.strip()]


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return types.MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _build_section(name: str, raw: Mapping[str, Any], env_keys: set[str]) -> Any:
    cls = _SECTIONS[name]
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            close = _closest(key, fields)
            hint = f" (did you mean {close}?)" if close else ""
            raise ConfigError(f"config: [{name}] {key}: unknown key{hint}")
        kwargs[key] = _coerce(name, key, hints[key], value, from_env=key in env_keys)
    for f in fields.values():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and f.name not in kwargs:
            raise ConfigError(f"config: [{name}] {f.name}: missing (required when [{name}] is present)")
    section = cls(**kwargs)
    validate = getattr(section, "validate", None)
    if validate:
        validate()
    return section


def _closest(key: str, options: Mapping[str, Any]) -> str | None:
    import difflib

    found = difflib.get_close_matches(key, list(options), n=1, cutoff=0.7)
    return found[0] if found else None


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, dict[str, str]], dict[tuple[str, str], str]]:
    """The overrides by section and key, and the variable each (section, key) came from."""
    out: dict[str, dict[str, str]] = {}
    names: dict[tuple[str, str], str] = {}
    for var, value in environ.items():
        if not var.startswith("LEADBOT_"):
            continue
        rest = var[len("LEADBOT_"):].lower()
        for section in _SECTIONS:
            if rest.startswith(section + "_"):
                key = rest[len(section) + 1:]
                out.setdefault(section, {})[key] = value
                names[(section, key)] = var
                break
    return out, names


def _name_the_variable(e: ConfigError, section: str, variables: Mapping[tuple[str, str], str]) -> ConfigError:
    """A problem with a value that came from the environment names the variable: the person
    looking for "[server] port" in config.toml would not find it there."""
    text = str(e)
    for (sec, key), var in variables.items():
        if sec == section and f"[{section}] {key}:" in text:
            return ConfigError(f"{text} (from the environment variable {var})")
    return e


def settings_from_mapping(data: Mapping[str, Any], environ: Mapping[str, str] | None = None,
                          source: str = "built-in defaults") -> Settings:
    environ = os.environ if environ is None else environ
    for name in data:
        if name not in _SECTIONS:
            close = _closest(name, _SECTIONS)
            hint = f" (did you mean [{close}]?)" if close else ""
            raise ConfigError(f"config: [{name}]: unknown section{hint}")
    overrides, variables = _env_overrides(environ)
    sections: dict[str, Any] = {}
    for name in _SECTIONS:
        raw = dict(data.get(name) or {})
        if name in data and not isinstance(data[name], dict):
            raise ConfigError(f"config: [{name}]: must be a table")
        env = overrides.get(name, {})
        raw.update(env)
        if name in _OPTIONAL_SECTIONS and name not in data and not env:
            sections[name] = None
            continue
        try:
            sections[name] = _build_section(name, raw, set(env))
        except ConfigError as e:
            raise _name_the_variable(e, name, variables) from None
    configured = frozenset(n for n in _SECTIONS if n in data or overrides.get(n))
    return Settings(**sections, source=source, configured=configured)


def resolve_config_path(explicit: str | os.PathLike[str] | None,
                        environ: Mapping[str, str] | None = None) -> Path | None:
    """--config FILE, else $LEADBOT_CONFIG, else ./config.toml when present, else None."""
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if environ.get("LEADBOT_CONFIG"):
        return Path(environ["LEADBOT_CONFIG"])
    local = Path("config.toml")
    return local if local.exists() else None


def load_settings(path: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    resolved = resolve_config_path(path, environ)
    if resolved is None:
        return settings_from_mapping({}, environ)
    try:
        text = resolved.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config: {resolved}: file not found") from None
    except OSError as e:
        raise ConfigError(f"config: {resolved}: cannot be read ({e.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config: {resolved}: not valid TOML ({e})") from None
    return settings_from_mapping(data, environ, source=str(resolved))
