"""Lead state changes behind the buttons: exactly once under concurrency, gates enforced."""

from __future__ import annotations

import asyncio

from store.dto import LeadInput
from crm.leads import LeadActions, stages_from_settings
from leadbot.settings import DEFAULT_STAGES


async def _reps(store, n: int) -> list[int]:
    rows = [{"id": f"r{i}", "name": f"Rep{i}", "wecom_userid": f"u{i}", "team": "T", "role": "rep"} for i in range(n)]
    await store.import_reps(rows)
    return [r.id for r in await store.list_reps()]


async def test_twenty_simultaneous_claims_give_one_owner(store, engine, clock) -> None:
    reps = await _reps(store, 20)
    lead, _ = await store.create_lead(LeadInput(fields={"name": "客户"}))
    actions = LeadActions(engine, clock)
    results = await asyncio.gather(*(actions.claim(lead.id, r, f"rep:{r}") for r in reps))
    winners = [r for r in results if r.outcome == "claimed"]
    assert len(winners) == 1
    assert sum(r.outcome == "taken" for r in results) == 19
    assert all(r.owner_id == winners[0].owner_id for r in results)
    again = await actions.claim(lead.id, winners[0].owner_id, "again")
    assert again.outcome == "already_yours"
    stored = await store.get_lead(lead.id)
    assert stored.owner_id == winners[0].owner_id and stored.status == "claimed" and stored.version == 2


async def test_offer_to_one_rep_cannot_be_claimed_by_another(store, engine, clock) -> None:
    a, b = await _reps(store, 2)
    lead, _ = await store.create_lead(LeadInput(fields={"name": "x"}))
    actions = LeadActions(engine, clock)
    await actions.reassign(lead.id, a, "router")
    assert (await actions.claim(lead.id, b, "b")).outcome == "taken"
    assert (await actions.claim(lead.id, a, "a")).outcome == "claimed"


async def test_pass_releases_an_unclaimed_offer_only(store, engine, clock) -> None:
    a, = await _reps(store, 1)
    lead, _ = await store.create_lead(LeadInput(fields={"name": "x"}))
    actions = LeadActions(engine, clock)
    await actions.reassign(lead.id, a, "router")
    released = await actions.release(lead.id, a, "not my region", "a")
    assert released is not None and released.owner_id is None
    await actions.reassign(lead.id, a, "router")
    await actions.claim(lead.id, a, "a")
    assert await actions.release(lead.id, a, "too late", "a") is None


async def test_stage_gates_block_then_allow(store, engine, clock) -> None:
    lead, _ = await store.create_lead(LeadInput(fields={"name": "x"}))
    actions = LeadActions(engine, clock)
    stages = stages_from_settings(DEFAULT_STAGES)
    first = await actions.advance(lead.id, stages, "rep:1")
    assert first.outcome == "advanced" and first.to_stage == "线索验证"
    blocked = await actions.advance(lead.id, stages, "rep:1", expected_stage="线索验证")
    assert blocked.outcome == "missing_evidence" and blocked.missing == ("needs_document",)
    ok = await actions.advance(lead.id, stages, "rep:1", expected_stage="线索验证",
                               evidence={"needs_document": "https://docs/needs.pdf"})
    assert ok.outcome == "advanced" and ok.to_stage == "痛点诊断"
    # The same tap delivered again (stale card) does not advance twice.
    again = await actions.advance(lead.id, stages, "rep:1", expected_stage="线索验证")
    assert again.outcome == "stale"
    assert (await store.get_lead(lead.id)).first_contact_at is not None
