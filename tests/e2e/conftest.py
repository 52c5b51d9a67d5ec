"""End-to-end fixtures: leadbot wired to the simulated WeCom platform, with reps imported."""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from sandbox.wecom import SimulatedWeCom
from tests.conftest import make_settings

CORP_ID = "wwsandboxcorp000001"
SECRET = "sandbox-app-secret"
AGENT_ID = 1000002
TOKEN = "SbxCallbackToken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def rep_rows(n: int, team: str = "华东") -> list[dict[str, str]]:
    return [{"id": f"r{i}", "name": f"销售{i}", "wecom_userid": f"user{i}", "team": team, "role": "rep",
             "weight": "1"} for i in range(n)]


@pytest.fixture
async def wecom(clock) -> AsyncIterator[SimulatedWeCom]:
    sb = SimulatedWeCom(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID, token=TOKEN,
                        encoding_aes_key=AES_KEY, clock=clock)
    await sb.start()
    yield sb
    await sb.stop()


def e2e_settings(api_base: str, **sections: Any):
    wecom = dict(corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID, token=TOKEN, encoding_aes_key=AES_KEY,
                 api_base=api_base, **sections.pop("wecom", {}))
    server = {"public_url": "http://leadbot.test", **sections.pop("server", {})}
    return make_settings(wecom=wecom, server=server, **sections)


async def start_leadbot(aiohttp_client, engine, clock, sandbox: SimulatedWeCom, **sections: Any):
    from bot.app import create_app

    # Workers are driven by the test (deliver), so what happens when is deterministic.
    app = create_app(e2e_settings(sandbox.base_url, **sections), clock=clock, engine=engine, start_workers=False)
    cli = await aiohttp_client(app)
    sandbox.callback_url = str(cli.make_url("/callbacks/wecom"))
    return cli


def ctx_of(cli):
    from bot.context import CTX

    return cli.app[CTX]


async def deliver(cli) -> None:
    """Processes the inbox and runs the delivery worker until both are empty."""
    ctx = ctx_of(cli)
    await ctx.services.processor.drain()
    await ctx.services.delivery_worker.drain()


def template_cards(sandbox: SimulatedWeCom, user: str) -> list[dict[str, Any]]:
    """The template cards on a user's simulated WeCom phone, as shown now."""
    return [m for m in sandbox.messages_for(user) if m["msgtype"] == "template_card"]


def card_keys(message: dict[str, Any]) -> dict[str, str]:
    card = message.get("card") or message.get("template_card") or {}
    return {b["key"].split(":", 1)[0]: b["key"] for b in card.get("button_list", []) if b.get("key")}
