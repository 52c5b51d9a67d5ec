"""Full resync (pull, push --since, the CLI), the signature recipe, settings, the order gate."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner

from crm_bridge.events import ChangeEvent, encode, sign, signed_headers, verify
from crm_bridge.inbound import CrmInbound
from crm_bridge.resync import http_fetcher, pull, push_since
from leadbot.settings import ConfigError, DEFAULT_STAGES, settings_from_mapping
from tests.crm_sync.conftest import deliver


def _crm_list_app(customers: list[dict], leads: list[dict], page_size: int) -> web.Application:
    records = [("customers", c) for c in customers] + [("leads", lead) for lead in leads]

    async def listing(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer pull-token"
        start = int(request.query.get("cursor") or 0)
        limit = int(request.query["limit"])
        chunk = records[start:start + limit]
        page: dict = {"customers": [r for k, r in chunk if k == "customers"],
                      "leads": [r for k, r in chunk if k == "leads"], "total": len(records),
                      "next_cursor": str(start + limit) if start + limit < len(records) else None}
        return web.json_response(page)

    app = web.Application()
    app.router.add_get("/list", listing)
    return app


async def test_pull_pages_through_the_crm_and_upserts(aiohttp_server, engine, clock, crm, receiver) -> None:
    customers = [{"external_id": f"C{i}", "name": f"客户{i}", "company": f"公司{i}"} for i in range(5)]
    leads = [{"external_id": f"L{i}", "name": f"客户{i}", "customer": f"C{i}", "amount": 100 * i} for i in range(5)]
    leads.append({"external_id": "L-bad", "amount": "lots"})
    server = await aiohttp_server(_crm_list_app(customers, leads, 4), host="127.0.0.1")
    inbound = CrmInbound(engine, clock, {}, [s["name"] for s in DEFAULT_STAGES])
    bind = http_fetcher(str(server.make_url("/list")), "pull-token", 4)
    ticks: list[int] = []
    async with aiohttp.ClientSession() as http:
        summary = await pull(inbound, bind(http), progress=ticks.append)
    assert summary.pages == 3 and summary.created == 10 and sum(ticks) == 11
    assert summary.rejected == [("lead", "L-bad", "amount: must be a number such as 12000 or \"1.2万\"")]
    async with aiohttp.ClientSession() as http:
        again = await pull(inbound, bind(http))
    assert again.created == 0 and again.updated == 0 and again.unchanged == 10  # idempotent
    lead = await inbound.lead("L3")
    assert lead["customer"]["external_id"] == "C3" and lead["amount"] == 300
    await deliver(crm)
    assert receiver.applied == []  # pulled records are not echoed back


async def test_push_since_reemits_snapshots_in_order(crm, receiver, engine, clock) -> None:
    await crm.put("/api/v1/customers/C-1", json={"name": "老客户"}, headers={"Authorization": "Bearer crm-token"})
    clock.advance(timedelta(hours=2))
    since = clock.now()
    await crm.put("/api/v1/customers/C-2", json={"name": "新客户"}, headers={"Authorization": "Bearer crm-token"})
    await deliver(crm)
    assert receiver.applied == []
    n = await push_since(engine, clock, [receiver.url], since, progress=lambda k: None)
    assert n == 1
    await deliver(crm)
    assert [e["type"] for e in receiver.applied] == ["customer.snapshot"]
    assert receiver.applied[0]["entity"]["external_id"] == "C-2"


def test_cli_push_since_and_pull_errors(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LEADBOT_SERVER_LANGUAGE", "en")
    from bot.cli import main

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'''[database]
url = "sqlite+aiosqlite:///{tmp_path}/cli.db"
[crm_bridge]
webhook_urls = ["http://127.0.0.1:9/hook"]
webhook_secret = "0123456789abcdef0123"
pull_url = "http://127.0.0.1:9/list"
''', encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(main, ["crm", "push", "--since", "2020-01-01", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "0 entities queued for 1 webhook URL;" in result.output
    result = runner.invoke(main, ["crm", "push", "--since", "yesterday", "--config", str(cfg)])
    assert result.exit_code == 2 and "--since" in result.output
    result = runner.invoke(main, ["crm", "pull", "--config", str(cfg)])
    assert result.exit_code == 1 and "crm pull:" in result.output
    bare = tmp_path / "bare.toml"
    bare.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/cli.db"\n', encoding="utf-8")
    result = runner.invoke(main, ["crm", "pull", "--config", str(bare)])
    assert result.exit_code == 2 and "[crm_bridge]" in result.output


def test_signature_recipe_matches_the_docs(clock) -> None:
    event = ChangeEvent(event_id="e1", type="lead.claimed", occurred_at=clock.now(), entity_type="lead",
                        entity_id=7, external_id="CRM-7", version=3, data={"lead": {"name": "王"}})
    body = encode(event.to_json())
    ts = int(clock.now().timestamp())
    headers = signed_headers("s3cret-s3cret-s3cret", "e1", ts, body)
    # The receiver's recipe, written out as in docs/crm_bridge.md:
    expected = hmac.new(b"s3cret-s3cret-s3cret", f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-Leadbot-Signature"] == expected == sign("s3cret-s3cret-s3cret", ts, body)
    assert verify("s3cret-s3cret-s3cret", str(ts), body, expected, now=ts + 10)
    assert not verify("s3cret-s3cret-s3cret", str(ts), body + b" ", expected, now=ts)
    assert not verify("s3cret-s3cret-s3cret", str(ts), body, expected, now=ts + 3600)  # replay window
    assert body.decode().startswith('{"data":') and "王" in body.decode()


def test_settings_section_is_optional_and_validated() -> None:
    assert settings_from_mapping({}, environ={}).crm_bridge is None
    s = settings_from_mapping({"crm_bridge": {"field_owners": {"city": "crm", "name": "leadbot"}}}, environ={})
    assert s.crm_bridge.owners["city"] == "crm" and s.crm_bridge.owners["name"] == "leadbot"
    assert s.crm_bridge.owners["stage"] == "leadbot"
    for raw, key in [({"webhook_urls": ["ftp://x"]}, "webhook_urls"),
                     ({"webhook_urls": ["https://x"], "webhook_secret": "short"}, "webhook_secret"),
                     ({"field_owners": {"name": "nobody"}}, "field_owners.name"),
                     ({"page_size": 0}, "page_size"),
                     ({"pull_urll": "x"}, "pull_urll")]:
        with pytest.raises(ConfigError) as e:
            settings_from_mapping({"crm_bridge": raw}, environ={})
        assert f"[crm_bridge] {key}" in str(e.value)
    env = settings_from_mapping({}, environ={"LEADBOT_CRM_BRIDGE_API_TOKENS": "a,b"})
    assert env.crm_bridge.api_tokens == ("a", "b")


async def test_gate_holds_later_events_of_the_same_entity_only(engine, clock) -> None:
    from store.outbox import OutboxRepo
    from crm_bridge.capture import outbox_items
    from crm_bridge.gate import EntityOrderGate

    repo = OutboxRepo(engine, clock)
    url = "http://127.0.0.1/hook"

    def ev(eid: str, entity: int) -> ChangeEvent:
        return ChangeEvent(event_id=eid, type="lead.claimed", occurred_at=clock.now(), entity_type="lead",
                           entity_id=entity, external_id=None, version=1)

    first, second, other = (outbox_items(ev("a", 1), [url])[0], outbox_items(ev("b", 1), [url])[0],
                            outbox_items(ev("c", 12), [url])[0])
    for item in (first, second, other):
        await repo.enqueue(item)
    gate = EntityOrderGate(engine, clock)
    assert await gate.wait_seconds(first.key, url) is None
    assert await gate.wait_seconds(second.key, url) >= 1.0
    assert await gate.wait_seconds(other.key, url) is None  # lead 12 is not lead 1
    assert await gate.wait_seconds(second.key, "http://elsewhere/hook") is None
    assert await gate.wait_seconds("lead:1:offer:1:2", url) is None  # not a change event
