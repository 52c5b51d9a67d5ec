from __future__ import annotations

from typing import Any

import pytest

from bot.context import CTX
from notifications.testing import FakeSender
from tests.conftest import INTAKE_TOKEN, make_settings
from tests.crm_sync.receiver import ReferenceReceiver

SECRET = "receiver-shared-secret-0123456789"
CRM_TOKEN = "crm-token"
CRM_AUTH = {"Authorization": f"Bearer {CRM_TOKEN}"}
INTAKE_AUTH = {"Authorization": f"Bearer {INTAKE_TOKEN}"}


def rep_rows(n: int) -> list[dict[str, str]]:
    return [{"id": f"r{i}", "name": f"销售{i}", "wecom_userid": f"user{i}", "team": "华东", "role": "rep",
             "weight": "1"} for i in range(n)]


@pytest.fixture
async def receiver(aiohttp_server, clock) -> Any:
    rcv = ReferenceReceiver(SECRET, now=lambda: clock.now().timestamp())
    server = await aiohttp_server(rcv.app(), host="127.0.0.1")
    rcv.url = str(server.make_url("/hook"))  # type: ignore[attr-defined]
    return rcv


@pytest.fixture
async def crm(aiohttp_client, engine, clock, receiver) -> Any:
    """leadbot with the bridge on, webhooks to the reference receiver; workers driven by hand;
    WeCom/DingTalk messages go to a FakeSender (cards are recorded, so they can be updated)."""
    from bot.app import create_app

    settings = make_settings(crm_bridge={"webhook_urls": [receiver.url], "webhook_secret": SECRET,
                                         "api_tokens": [CRM_TOKEN]},
                             server={"public_url": "http://leadbot.test"})
    app = create_app(settings, clock=clock, engine=engine, start_workers=False)
    cli = await aiohttp_client(app)
    ctx = app[CTX]
    ctx.services.crm_webhook_sender.inner = FakeSender()
    await ctx.store.import_reps(rep_rows(3))
    cli.ctx = ctx
    return cli


async def deliver(cli) -> int:
    await cli.ctx.services.processor.drain()  # new leads are routed from the inbox
    return await cli.ctx.services.delivery_worker.drain()
