"""Fixtures for the friend/customer auto-match: leadbot wired to the simulated DingTalk (CRM
events and records) or WeCom (friend adds), handlers dispatched for real, workers driven by the
test, on the shared `engine` (SQLite, or PostgreSQL when LEADBOT_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.context import CTX
from sandbox.dingtalk import DingTalkSandbox
from tests.conftest import make_settings
from tests.e2e.conftest import wecom  # noqa: F401  (the simulated WeCom fixture)

DT_REPS = [{"id": "r1", "name": "陈静", "dingtalk_userid": "dt_chen", "team": "华北", "role": "rep"},
           {"id": "r2", "name": "李强", "dingtalk_userid": "dt_li", "team": "华北", "role": "rep"}]


@pytest.fixture
async def dingtalk(clock):
    sb = DingTalkSandbox(clock=clock, users=("dt_chen", "dt_li"))
    await sb.start()
    yield sb
    await sb.stop()


async def start_dingtalk_leadbot(aiohttp_client, engine, clock, sb: DingTalkSandbox, **sections: Any):
    from bot.app import create_app

    settings = make_settings(dingtalk=sb.dingtalk_settings(), **sections)
    app = create_app(settings, clock=clock, engine=engine, start_workers=False)
    cli = await aiohttp_client(app)
    sb.leadbot_url = str(cli.make_url("")).rstrip("/")
    return cli


async def run(cli) -> None:
    """Processes the inbox, then delivers the outbox, until both are empty."""
    ctx = cli.app[CTX]
    await ctx.services.processor.drain()
    await ctx.services.delivery_worker.drain()


def seen_by(sb: DingTalkSandbox, user: str) -> list[str]:
    """Every card and work notice a DingTalk user has received, as text."""
    cards = [json.dumps(c.view(user), ensure_ascii=False) for c in sb.cards.values()
             if user in c.private_data or any(user in s for s in c.spaces)]
    notices = [json.dumps(n, ensure_ascii=False, default=str) for n in sb.notices_for(user)]
    return cards + notices


async def count(engine, model, *where) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(model).where(*where))).scalar_one()
