"""WeCom fixtures: the simulated platform (sandbox/wecom.py) on loopback, leadbot wired to it,
and a recorder that registers a handler for one event type for the length of a test."""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from bot import handlers as handler_registry
from sandbox.wecom import SimulatedWeCom
from tests.conftest import make_settings

CORP_ID = "wwsandboxcorp000001"
SECRET = "sandbox-app-secret"
AGENT_ID = 1000002
TOKEN = "SbxCallbackToken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
USERS = ("zhangsan", "lisi", "wangwu")
ROBOT = "robot-key-managers"

# The official vectors (reference/wecom.md §1).
OFFICIAL = dict(corp_id="wx5823bf96d3bd56c7", token="QDG6eK",
                encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", agent_id=218, secret="x")


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.result: Any = None
        self.delay: float = 0.0

    async def __call__(self, event: Any, ctx: Any) -> Any:
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        self.events.append(event)
        return self.result(event) if callable(self.result) else self.result


@pytest.fixture
def record():
    """record(EventType) -> Recorder registered via @handles for this test only."""
    added: list[tuple[type, Any]] = []

    def register(event_type: type) -> Recorder:
        rec = Recorder()
        handler_registry.handles(event_type)(rec)
        added.append((event_type, rec))
        return rec

    yield register
    for event_type, rec in added:
        fns = handler_registry._REGISTRY.get(event_type, [])
        if rec in fns:
            fns.remove(rec)


@pytest.fixture
async def sandbox(clock) -> AsyncIterator[SimulatedWeCom]:
    sb = SimulatedWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID, token=TOKEN,
                        encoding_aes_key=AES_KEY, clock=clock, users=USERS, robots=[ROBOT])
    await sb.start()
    yield sb
    await sb.stop()


def wecom_settings(api_base: str, **server: Any):
    return make_settings(
        wecom=dict(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID, token=TOKEN, encoding_aes_key=AES_KEY,
                   api_base=api_base, manager_robot_key=ROBOT),
        server={"replay_window_seconds": 300, **server})


@pytest.fixture
async def leadbot(aiohttp_client, engine, clock, sandbox):
    """leadbot over HTTP, its WeCom client pointed at the sandbox, the sandbox's callbacks at it."""
    from bot.app import create_app

    app = create_app(wecom_settings(sandbox.base_url), clock=clock, engine=engine)
    cli = await aiohttp_client(app)
    sandbox.callback_url = str(cli.make_url("/callbacks/wecom"))
    return cli
