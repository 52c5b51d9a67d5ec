"""Fixtures for the DingTalk edge: the simulated DingTalk (sandbox/dingtalk.py) on loopback and
leadbot pointed at it, sharing one manual clock, with handler dispatch recorded."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import pytest

from bot.app import create_app
from bot.context import CTX, AppContext
from sandbox.dingtalk import DingTalkSandbox
from tests.conftest import make_settings

USERS = ("u1", "u2", "u3", "manager1")


@dataclass
class Recorder:
    """Stands in for bot.handlers.dispatch: records every event, answers what `reply` says."""

    events: list[Any] = field(default_factory=list)
    reply: Callable[[Any], Any] | None = None
    delay: Callable[[], Awaitable[None]] | None = None

    async def __call__(self, event: Any, ctx: Any) -> Any:
        self.events.append(event)
        if self.delay is not None:
            await self.delay()
        return self.reply(event) if self.reply else None


@dataclass
class Leadbot:
    client: Any  # aiohttp TestClient
    ctx: AppContext
    recorder: Recorder
    sandbox: DingTalkSandbox

    @property
    def processor(self) -> Any:
        return self.ctx.services.processor

    @property
    def dingtalk(self) -> Any:
        return self.ctx.services.dingtalk_client

    async def drain(self) -> int:
        return await self.processor.drain()

    async def counts(self) -> dict[str, int]:
        return await self.ctx.inbox.counts()


@pytest.fixture
async def sandbox(clock):
    sb = DingTalkSandbox(clock=clock, users=USERS)
    await sb.start()
    yield sb
    await sb.stop()


@pytest.fixture
def make_leadbot(aiohttp_client, engine, clock, sandbox):
    """Builds leadbot with [dingtalk] pointing at the sandbox; keyword sections override."""

    async def build(dingtalk: dict | None = None, server: dict | None = None) -> Leadbot:
        sections: dict[str, dict] = {"dingtalk": sandbox.dingtalk_settings(**(dingtalk or {}))}
        if server:
            sections["server"] = server
        settings = make_settings(**sections)
        app = create_app(settings, clock=clock, engine=engine, start_workers=False)
        client = await aiohttp_client(app)
        ctx = app[CTX]
        recorder = Recorder()
        ctx.services.processor.dispatch = recorder
        client_obj = ctx.services.dingtalk_client
        client_obj.sleep = _no_sleep  # backoff without waiting
        if ctx.services.dingtalk_stream is not None:
            ctx.services.dingtalk_stream.sleep = _short_sleep  # reconnect at once
        sandbox.leadbot_url = str(client.make_url("")).rstrip("/")
        return Leadbot(client, ctx, recorder, sandbox)

    return build


@pytest.fixture
async def leadbot(make_leadbot) -> Leadbot:
    return await make_leadbot()


async def _no_sleep(_: float) -> None:
    return None


async def _short_sleep(_: float) -> None:
    await asyncio.sleep(0.005)
