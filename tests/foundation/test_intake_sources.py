"""Intake sources ([intake] sources): each reads only its own leads, with its own idempotency."""

from __future__ import annotations

import pytest

from bot.context import CTX
from leadbot.settings import ConfigError, settings_from_mapping
from tests.conftest import AUTH, make_settings

A = {"Authorization": "Bearer token-of-source-a-0001"}
B = {"Authorization": "Bearer token-of-source-b-0002"}


@pytest.fixture
def settings():
    return make_settings(intake={"sources": {"ads": {"tokens": ["token-of-source-a-0001"]},
                                             "forms": {"tokens": ["token-of-source-b-0002"]}}})


async def test_a_source_reads_only_its_own_leads(client) -> None:
    resp = await client.post("/api/v1/leads", json={"name": "王伟", "phone": "13800138000"}, headers=A)
    assert resp.status == 201
    lead = await resp.json()
    assert lead["source"] == "ads"
    assert (await client.get(f"/api/v1/leads/{lead['id']}", headers=A)).status == 200
    for other in (B, AUTH):  # another named source, and the default (api_tokens) source
        resp = await client.get(f"/api/v1/leads/{lead['id']}", headers=other)
        assert resp.status == 404
        assert "13800138000" not in await resp.text()


async def test_no_intake_token_reads_a_lead_no_source_sent(client, store) -> None:
    """Isolation is the default: the api_tokens source too reads only what it sent, not a lead
    from a WeCom friend or the CRM bridge (source "")."""
    from store.dto import LeadInput

    lead, _ = await store.create_lead(LeadInput(fields={"name": "好友", "phone": "13900001111"},
                                                source_channel="wecom_friend"))
    for token in (A, B, AUTH):
        resp = await client.get(f"/api/v1/leads/{lead.id}", headers=token)
        assert resp.status == 404 and "13900001111" not in await resp.text()
    mine = await (await client.post("/api/v1/leads", json={"name": "自己的"}, headers=AUTH)).json()
    assert (await client.get(f"/api/v1/leads/{mine['id']}", headers=AUTH)).status == 200


async def test_idempotency_keys_and_source_refs_are_per_source(client) -> None:
    key = {"Idempotency-Key": "order-42"}
    junk = await client.post("/api/v1/leads", json={"name": "junk"}, headers={**B, **key})
    real = await client.post("/api/v1/leads", json={"name": "真客户"}, headers={**A, **key})
    assert junk.status == 201 and real.status == 201
    real_lead = await real.json()
    assert real_lead["name"] == "真客户" and real_lead["id"] != (await junk.json())["id"]
    again = await client.post("/api/v1/leads", json={"name": "真客户"}, headers={**A, **key})
    assert again.status == 200 and (await again.json())["id"] == real_lead["id"]
    ref = {"name": "x", "source_ref": "R-1", "channel": "web"}
    first_a = await (await client.post("/api/v1/leads", json=ref, headers=A)).json()
    first_b = await client.post("/api/v1/leads", json=ref, headers=B)
    assert first_b.status == 201 and (await first_b.json())["id"] != first_a["id"]


async def test_long_idempotency_keys_are_not_cut(client) -> None:
    """Two keys sharing their first 300 characters are two leads; each resend finds its own."""
    base = "k" * 400
    one = await (await client.post("/api/v1/leads", json={"name": "一"}, headers={**A, "Idempotency-Key": base + "1"})).json()
    two = await (await client.post("/api/v1/leads", json={"name": "二"}, headers={**A, "Idempotency-Key": base + "2"})).json()
    assert one["id"] != two["id"] and one["created"] and two["created"]
    again = await client.post("/api/v1/leads", json={"name": "二"}, headers={**A, "Idempotency-Key": base + "2"})
    assert again.status == 200 and (await again.json())["id"] == two["id"]


async def test_the_lead_names_its_owner_by_ids_people_know(client, store) -> None:
    await store.import_reps([{"id": "R007", "name": "钱伟", "wecom_userid": "qianwei", "role": "rep"}])
    lead = await (await client.post("/api/v1/leads", json={"name": "李雷"}, headers=A)).json()
    await client.app[CTX].services.processor.drain()  # routing runs from the inbox
    got = await (await client.get(f"/api/v1/leads/{lead['id']}", headers=A)).json()
    rep = await store.rep_by_external_id("R007")
    assert got["owner"] == {"id": rep.id, "external_id": "R007", "name": "钱伟"}


def test_sources_are_checked_at_start() -> None:
    def load(intake):
        return settings_from_mapping({"intake": intake}, environ={})

    with pytest.raises(ConfigError, match=r"\[intake\] sources.ads.tokens"):
        load({"sources": {"ads": {"tokens": []}}})
    with pytest.raises(ConfigError, match="one source only"):
        load({"sources": {"ads": {"tokens": ["t1"]}, "web": {"tokens": ["t1"]}}})
    with pytest.raises(ConfigError, match=r"sources.Bad Name"):
        load({"sources": {"Bad Name": {"tokens": ["t1"]}}})
    with pytest.raises(ConfigError, match="default source"):
        load({"api_tokens": ["t0"], "sources": {"default": {"tokens": ["t1"]}}})
    env = settings_from_mapping({}, environ={"LEADBOT_INTAKE_SOURCES": '{"ads": {"tokens": ["t9"]}}'})
    assert env.intake.source_tokens == {"ads": ("t9",)}
