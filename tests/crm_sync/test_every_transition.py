"""Every change of a lead reaches the CRM mirror: the SLA ladder's pool return included (a mirror
must never show a pooled lead as still assigned), and no lead version goes unreported."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.context import CTX
from notifications.testing import FakeSender
from tests.conftest import make_settings
from tests.crm_sync.conftest import INTAKE_AUTH, SECRET, deliver, rep_rows

SLA = {"first_touch_remind": "1m", "first_touch_escalate": "2m", "first_touch_reassign": "3m",
       "pool_return": "10m", "pool_recycle": "30d", "working_time": False}


@pytest.fixture
async def crm_ladder(aiohttp_client, engine, clock, receiver) -> Any:
    from bot.app import create_app

    settings = make_settings(crm_bridge={"webhook_urls": [receiver.url], "webhook_secret": SECRET},
                             server={"public_url": "http://leadbot.test"}, sla=SLA)
    app = create_app(settings, clock=clock, engine=engine, start_workers=False)
    cli = await aiohttp_client(app)
    cli.ctx = app[CTX]
    cli.ctx.services.crm_webhook_sender.inner = FakeSender()
    await cli.ctx.store.import_reps(rep_rows(2))
    return cli


async def _run_ladder(cli, clock, minutes: int) -> None:
    for _ in range(minutes):
        clock.advance(timedelta(minutes=1))
        await cli.ctx.services.scheduler.catch_up()
        await deliver(cli)


async def test_pool_return_is_mirrored_and_no_version_is_skipped(crm_ladder, receiver, clock) -> None:
    resp = await crm_ladder.post("/api/v1/leads", json={"name": "韩梅梅", "phone": "13900002222"},
                                 headers=INTAKE_AUTH)
    lead_id = (await resp.json())["id"]
    await deliver(crm_ladder)
    assert (await crm_ladder.ctx.store.get_lead(lead_id)).owner_id is not None

    await _run_ladder(crm_ladder, clock, 12)  # nobody claims: reassigned, then back to the pool

    stored = await crm_ladder.ctx.store.get_lead(lead_id)
    assert stored.status == "pool" and stored.owner_id is None
    assert receiver.refused == []
    mirrored = receiver.mirror[("lead", lead_id)]
    assert mirrored["status"] == "pool" and mirrored["owner"] is None
    assert mirrored["version"] == stored.version
    assert receiver.types_for("lead", lead_id)[-1] == "lead.pooled"
    versions = sorted(e["version"] for e in receiver.applied if e["entity"]["id"] == lead_id
                      and e["entity"]["type"] == "lead")
    assert versions == list(range(1, stored.version + 1)), versions  # every change, none skipped


async def test_claim_and_first_contact_are_mirrored(crm_ladder, receiver) -> None:
    resp = await crm_ladder.post("/api/v1/leads", json={"name": "李华", "phone": "13900003333"}, headers=INTAKE_AUTH)
    lead_id = (await resp.json())["id"]
    await deliver(crm_ladder)
    owner = (await crm_ladder.ctx.store.get_lead(lead_id)).owner_id
    actions = crm_ladder.ctx.services.lead_actions
    assert (await actions.claim(lead_id, owner, f"rep:{owner}")).outcome == "claimed"
    assert await actions.first_contact(lead_id, f"rep:{owner}", "call")
    assert not await actions.first_contact(lead_id, f"rep:{owner}", "call")  # once only
    await deliver(crm_ladder)
    stored = await crm_ladder.ctx.store.get_lead(lead_id)
    assert receiver.types_for("lead", lead_id)[-2:] == ["lead.claimed", "lead.contacted"]
    mirrored = receiver.mirror[("lead", lead_id)]
    assert mirrored["sla"]["first_contact_at"] == stored.first_contact_at.isoformat()
    assert mirrored["version"] == stored.version
