"""`leadbot serve` as a real process (to kill -9, or to run several of), on a database of its own:
a temp SQLite file, or a fresh PostgreSQL database when LEADBOT_TEST_DATABASE_URL is set."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import aiohttp
from sqlalchemy import text
from sqlalchemy.engine import make_url

from store.db import create_engine
from sandbox.wecom import OK, SimulatedWeCom
from tests.conftest import INTAKE_TOKEN, PG_URL

WECOM = dict(corp_id="wwfaultcorp0000001", secret="fault-secret", agent_id=1000002, token="FaultToken",
             encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return json.dumps(str(v), ensure_ascii=False)


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> None:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {_toml(v)}" for k, v in values.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def leadbot_bin() -> str:
    return str(Path(sys.executable).parent / "leadbot")


class LeadbotProcess:
    """One `leadbot serve`; `kill()` is kill -9 of its whole process group."""

    def __init__(self, workdir: Path, db_url: str, *, api_base: str = "http://127.0.0.1:9",
                 extra: dict[str, dict[str, Any]] | None = None, name: str = "leadbot") -> None:
        self.dir = workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.name = name
        sections: dict[str, dict[str, Any]] = {
            "server": {"host": "127.0.0.1", "port": self.port, "replay_window_seconds": 300,
                       "public_url": self.base, "secret_key": "fault-test-secret-key-0123456789",
                       "log_format": "json"},
            "database": {"url": db_url},
            "intake": {"api_tokens": [INTAKE_TOKEN]},
            "wecom": dict(WECOM, api_base=api_base),
        }
        for k, v in (extra or {}).items():
            sections.setdefault(k, {}).update(v)
        self.config = workdir / f"{name}.toml"
        write_config(self.config, sections)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{name}.log"

    async def start(self, wait: float = 60.0) -> "LeadbotProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([leadbot_bin(), "serve", "--config", str(self.config)], cwd=self.dir,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "LEADBOT_CONFIG": ""})
        log.close()
        deadline = time.monotonic() + wait
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log_path.read_text(errors='replace')[-1500:]}")
                try:
                    async with http.get(self.base + "/healthz", timeout=aiohttp.ClientTimeout(total=1)) as r:
                        if r.status == 200:
                            return self
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                await asyncio.sleep(0.2)
        self.kill()
        raise RuntimeError(f"{self.name} did not answer /healthz within {wait} s")

    def kill(self) -> None:
        """kill -9: no shutdown hooks, no flush, no goodbye."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class CrashWeCom(SimulatedWeCom):
    """The simulated WeCom (which shows nothing for a template_card task_id it accepted before, as WeCom
    does) plus a hook: `on_card(task_id)` runs after a card was accepted and delivered, before the
    answer goes back, so a test can kill -9 leadbot there: WeCom has the card, leadbot never hears
    of it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_card: Callable[[str], None] | None = None

    def _message_send(self, body: dict[str, Any]) -> dict[str, Any]:
        response = super()._message_send(body)
        card = body.get("template_card") if body.get("msgtype") == "template_card" else None
        task_id = card.get("task_id") if isinstance(card, dict) else None
        if task_id and response.get("errcode") == OK and self.on_card is not None:
            self.on_card(task_id)
        return response


@asynccontextmanager
async def fresh_database(tmp_path: Path) -> AsyncIterator[str]:
    """A database URL nobody else uses: a SQLite file, or a new PostgreSQL database (dropped after)."""
    if not PG_URL:
        yield f"sqlite+aiosqlite:///{tmp_path}/leadbot.db"
        return
    name = f"leadbot_t_{uuid.uuid4().hex[:10]}"
    admin_url = make_url(PG_URL)
    admin = create_engine(PG_URL)
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def scalar(db_url: str, sql: str) -> Any:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar()
    finally:
        await engine.dispose()


async def rows(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(text(sql))).all()]
    finally:
        await engine.dispose()
