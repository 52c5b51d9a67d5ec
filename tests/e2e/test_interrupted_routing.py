"""A crash between the routing commit and the card offer: the retried lead event finishes the
job (card offered, ladder started) instead of skipping a lead that is already assigned, and
doing it twice sends nothing twice."""

from __future__ import annotations

from sqlalchemy import func, select

from store.models import OutboxItem, Timer
from tests.conftest import AUTH
from tests.e2e.conftest import ctx_of, deliver, rep_rows, start_leadbot


async def _count(engine, model, *where) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(model).where(*where))).scalar_one()


async def test_a_lead_routed_before_a_crash_still_gets_its_card_and_ladder(
        aiohttp_client, engine, clock, store, wecom) -> None:
    from bot.events import LeadSubmitted
    from bot.handlers.leads import handle_submit_lead

    await store.import_reps(rep_rows(3))
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom)
    ctx = ctx_of(cli)
    lead = await (await cli.post("/api/v1/leads", json={"name": "周杰", "phone": "13900001111"},
                                 headers=AUTH)).json()
    # The crash: routing committed, nothing after it ran.
    decision = await ctx.services.router.assign(lead["id"])
    assert decision.applied and decision.rep_id is not None
    assert await _count(engine, OutboxItem, OutboxItem.lead_id == lead["id"]) == 0

    await deliver(cli)  # the inbox row is processed (as after a restart)
    owner = await store.get_rep(decision.rep_id)
    cards = [m for m in wecom.messages_for(owner.wecom_userid) if m["msgtype"] == "template_card"]
    assert len(cards) == 1
    ladder = await _count(engine, Timer, Timer.lead_id == lead["id"])
    assert ladder > 0

    # The same event once more (a second crash, a redelivery): nothing new is written or sent.
    event = LeadSubmitted(lead_id=lead["id"], source_channel="api", occurred_at=clock.now())
    await handle_submit_lead(event, ctx)
    await deliver(cli)
    assert len([m for m in wecom.messages_for(owner.wecom_userid) if m["msgtype"] == "template_card"]) == 1
    assert await _count(engine, Timer, Timer.lead_id == lead["id"]) == ladder


async def test_a_claimed_lead_is_left_alone(aiohttp_client, engine, clock, store, wecom) -> None:
    from bot.events import LeadSubmitted
    from bot.handlers.leads import handle_submit_lead

    await store.import_reps(rep_rows(2))
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom)
    ctx = ctx_of(cli)
    lead = await (await cli.post("/api/v1/leads", json={"name": "林青"}, headers=AUTH)).json()
    await deliver(cli)
    before = await _count(engine, OutboxItem)
    stored = await store.get_lead(lead["id"])
    owner = await store.get_rep(stored.owner_id)
    claimed = await ctx.services.lead_actions.claim(lead["id"], owner.id, f"rep:{owner.id}")
    assert claimed.outcome == "claimed"
    await handle_submit_lead(LeadSubmitted(lead_id=lead["id"], source_channel="api", occurred_at=clock.now()), ctx)
    assert await _count(engine, OutboxItem) == before
