"""Old action tokens act only when their holder may act on the lead as it is now (issue 18 #6),
driven through the H5 action page as a text-mode rep or manager would."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.context import CTX
from tests.conftest import AUTH

REPS = [
    {"id": "m1", "wecom_userid": "u_m1", "name": "经理甲", "team": "华东", "role": "manager"},
    {"id": "a", "wecom_userid": "u_a", "name": "旧主", "team": "华东", "role": "rep", "manager": "m1"},
    {"id": "b", "wecom_userid": "u_b", "name": "新主", "team": "华东", "role": "rep", "manager": "m1"},
    {"id": "c", "wecom_userid": "u_c", "name": "休假", "team": "华东", "role": "rep", "manager": "m1", "status": "on_leave"},
    {"id": "x", "wecom_userid": "u_x", "name": "别组", "team": "华北", "role": "rep"},
]


@pytest.fixture
async def world(client, store):
    summary = await store.import_reps(REPS)
    assert not summary.rejected, summary.rejected
    ctx = client.app[CTX]
    reps = {r["id"]: await store.rep_by_external_id(r["id"]) for r in REPS}
    lead = await (await client.post("/api/v1/leads", json={"name": "客户"}, headers=AUTH)).json()
    await ctx.services.processor.drain()
    return client, ctx, reps, lead["id"]


def _page(ctx, lead_id, rep, action, args=None):
    now = ctx.clock.now()
    link = ctx.services.buttons.link(lead_id, f"rep:{rep.id}", now)
    key = ctx.services.signer.key(action, lead_id, f"rep:{rep.id}", now + timedelta(days=1), args)
    return "/a/" + link.rsplit("/a/", 1)[1], key


async def _tap(client, path, key, **form) -> str:
    resp = await client.post(path, data={"key": key, **form})
    assert resp.status < 500
    return await resp.text()


async def test_a_former_owners_snooze_does_nothing(world) -> None:
    client, ctx, reps, lead_id = world
    actions = ctx.services.lead_actions
    await actions.reassign(lead_id, reps["a"].id, "test", "setup")
    lead = await ctx.store.get_lead(lead_id)
    await ctx.services.ladder.cancel(lead, "setup")
    await ctx.services.ladder.start(lead)
    path, snooze = _page(ctx, lead_id, reps["a"], "snooze", {"minutes": 120})  # issued while A owned it
    await actions.reassign(lead_id, reps["b"].id, "test", "moved")
    lead = await ctx.store.get_lead(lead_id)
    await ctx.services.ladder.cancel(lead, "reassigned")
    await ctx.services.ladder.start(lead)
    timers = ctx.services.timers
    before = [(t.kind, t.due_at) for t in await timers.for_lead(lead_id, ("pending",))]
    page = await _tap(client, path, snooze)
    assert 'data-code="refused_not_allowed"' in page
    assert [(t.kind, t.due_at) for t in await timers.for_lead(lead_id, ("pending",))] == before
    # The owner's own snooze still works.
    path, snooze = _page(ctx, lead_id, reps["b"], "snooze", {"minutes": 30})
    assert 'data-code="snoozed"' in await _tap(client, path, snooze)


@pytest.mark.parametrize("target", ["x", "c", "missing", "m1"])
async def test_a_managers_reassign_goes_only_to_an_active_rep_of_the_team(world, target) -> None:
    client, ctx, reps, lead_id = world
    before = await ctx.store.get_lead(lead_id)
    path, key = _page(ctx, lead_id, reps["m1"], "reassign")
    to = "999999" if target == "missing" else str(reps[target].id)
    page = await _tap(client, path, key, to=to)
    assert 'data-code="refused_target"' in page
    after = await ctx.store.get_lead(lead_id)
    assert (after.owner_id, after.version) == (before.owner_id, before.version)


async def test_a_managers_reassign_to_an_active_team_rep_works(world) -> None:
    client, ctx, reps, lead_id = world
    path, key = _page(ctx, lead_id, reps["m1"], "reassign")
    target = reps["b"] if (await ctx.store.get_lead(lead_id)).owner_id != reps["b"].id else reps["a"]
    page = await _tap(client, path, key, to=str(target.id))
    assert 'data-code="reassigned"' in page
    assert (await ctx.store.get_lead(lead_id)).owner_id == target.id
