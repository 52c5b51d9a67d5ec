"""A lead's life on WeCom, driven from outside: a source posts it, the rep's card arrives at the
simulated WeCom, a tap on the card (a real encrypted callback) claims it, the other copies update."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.conftest import AUTH
from tests.e2e.conftest import card_keys, ctx_of, deliver, rep_rows, start_leadbot


async def test_lead_card_arrives_and_one_tap_claims(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(rep_rows(3))
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom)
    resp = await cli.post("/api/v1/leads", json={"name": "王小明", "phone": "13812345678", "company": "华为",
                                                 "channel": "web_form"}, headers=AUTH)
    assert resp.status == 201
    lead = await resp.json()
    await deliver(cli)
    stored = await store.get_lead(lead["id"])
    assert stored.owner_id is not None and stored.status == "assigned"
    owner = await store.get_rep(stored.owner_id)
    cards = [m for m in wecom.messages_for(owner.wecom_userid) if m["msgtype"] == "template_card"]
    assert len(cards) == 1
    card = cards[0]
    text = str(card["card"])
    assert "138****5678" in text and "13812345678" not in text  # masked until claimed
    assert "跟进时限" in text  # the first card already counts down to the SLA escalation
    keys = card_keys(card)
    assert set(keys) == {"claim", "pass"}
    result = await wecom.send_card_event(owner.wecom_userid, keys["claim"], card["task_id"])
    assert result.status == 200
    claimed = await store.get_lead(lead["id"])
    assert claimed.status == "claimed" and claimed.owner_id == owner.id
    # The passive reply turned the tapper's card into the owned view with the full number.
    assert "13812345678" in str(card["card"])
    # A platform retry of the same tap has no second effect.
    again = await wecom.resend(result)
    assert again.status == 200
    assert (await store.get_lead(lead["id"])).version == claimed.version


async def test_twenty_reps_tap_the_pool_card_at_once(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(rep_rows(20))
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom,
                              assignment={"rules": [{"name": "expo", "match": {"source_channel": "expo"},
                                                     "pool": "华东"}]})
    lead = await (await cli.post("/api/v1/leads", json={"name": "李雷", "channel": "expo"}, headers=AUTH)).json()
    await deliver(cli)
    copies = {u: [m for m in wecom.messages_for(u) if m["msgtype"] == "template_card"] for u in
              (f"user{i}" for i in range(20))}
    assert all(len(c) == 1 for c in copies.values()), {u: len(c) for u, c in copies.items()}
    results = await asyncio.gather(*(wecom.send_card_event(u, card_keys(c[0])["claim"], c[0]["task_id"])
                                     for u, c in copies.items()))
    assert all(r.status == 200 for r in results)
    stored = await store.get_lead(lead["id"])
    assert stored.status == "claimed"
    winner = await store.get_rep(stored.owner_id)
    await deliver(cli)
    # Every other copy now says who claimed it: by passive reply or by update_template_card.
    updates = wecom.calls_to("message/update_template_card")
    losers = [u for u in copies if u != winner.wecom_userid]
    shown = {u: str(copies[u][0].get("card")) + str(copies[u][0].get("replace_name", "")) for u in losers}
    assert all(winner.name in s for s in shown.values()), shown
    assert len(updates) >= 1


async def test_forged_and_someone_elses_tokens_are_refused(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(rep_rows(2))
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom)
    lead = await (await cli.post("/api/v1/leads", json={"name": "韩梅梅"}, headers=AUTH)).json()
    await deliver(cli)
    stored = await store.get_lead(lead["id"])
    owner = await store.get_rep(stored.owner_id)
    other = "user1" if owner.wecom_userid == "user0" else "user0"
    card = [m for m in wecom.messages_for(owner.wecom_userid) if m["msgtype"] == "template_card"][0]
    claim = card_keys(card)["claim"]
    # Someone else taps with the owner's key (forwarded card): refused, audited.
    await wecom.send_card_event(other, claim, card["task_id"])
    forged = claim[:-3] + ("AAA" if not claim.endswith("AAA") else "BBB")
    await wecom.send_card_event(owner.wecom_userid, forged, card["task_id"])
    assert (await store.get_lead(lead["id"])).status == "assigned"
    await deliver(cli)
    told = [m for m in wecom.messages_for(other) if m["msgtype"] == "text"]
    assert told and "权限" in told[-1]["content"]["content"]
    # An expired token is refused too.
    clock.advance(timedelta(days=4))
    await wecom.send_card_event(owner.wecom_userid, claim, card["task_id"])
    assert (await store.get_lead(lead["id"])).status == "assigned"
    from sqlalchemy import select

    from store.models import AuditEntry

    async with engine.connect() as conn:
        reasons = [r[0]["reason"] for r in (await conn.execute(
            select(AuditEntry.data).where(AuditEntry.action == "action.refused"))).all()]
    assert {"not_allowed", "token_forged", "token_expired"} <= set(reasons)
    assert ctx_of(cli) is not None
