"""Scenario fixtures: leadbot between the strict simulated WeCom and DingTalk, driven only through
its HTTP routes (intake, the platforms' callbacks), and the phones as the platforms show them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, AsyncIterator

import pytest

from bot.context import CTX
from sandbox.dingtalk import DingTalkSandbox
from sandbox.wecom import SimulatedWeCom
from tests.crm_sync.receiver import ReferenceReceiver
from tests.e2e.conftest import e2e_settings, wecom  # noqa: F401  (fixture)

REPS = [{"id": "m1", "name": "周经理", "wecom_userid": "zhou", "team": "华东", "role": "manager"},
        {"id": "w1", "name": "王芳", "wecom_userid": "wangfang", "team": "华东", "role": "rep", "manager": "m1"},
        {"id": "w2", "name": "李强", "wecom_userid": "liqiang", "team": "华东", "role": "rep", "manager": "m1"},
        {"id": "d1", "name": "陈静", "dingtalk_userid": "chenjing", "team": "华东", "role": "rep", "manager": "m1"},
        {"id": "d2", "name": "钱伟", "dingtalk_userid": "qianwei", "team": "华东", "role": "rep", "manager": "m1"}]
RULES = {"rules": [{"name": "expo", "match": {"source_channel": "expo"}, "pool": "华东"},
                   {"name": "web", "team": "华东"}]}
CRM_SECRET = "scenario-crm-secret-0123456789"
CRM_TOKEN = "scenario-crm-token"
CRM_AUTH = {"Authorization": f"Bearer {CRM_TOKEN}"}
SLA = {"first_touch_remind": "2m", "first_touch_escalate": "4m", "first_touch_reassign": "30m",
       "pool_return": "2h"}


@pytest.fixture
async def dingtalk(clock) -> AsyncIterator[DingTalkSandbox]:
    sb = DingTalkSandbox(clock=clock, users=("chenjing", "qianwei"))
    await sb.start()
    yield sb
    await sb.stop()


@dataclass
class Phones:
    """What every simulated phone shows, and taps on it, through the platforms' callbacks."""

    cli: Any
    wecom: SimulatedWeCom
    dingtalk: DingTalkSandbox
    clock: Any

    @property
    def ctx(self) -> Any:
        return self.cli.app[CTX]

    async def settle(self) -> None:
        await self.ctx.services.processor.drain()
        await self.ctx.services.delivery_worker.drain()

    async def tick(self, minutes: float) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        await self.ctx.services.scheduler.sweep_once()
        await self.settle()

    # ---- what a phone shows -------------------------------------------------------------------

    def cards(self, user: str, lead_id: int | None) -> list[dict[str, Any]]:
        """Every card of the lead on the user's phone, as shown now: {text, actions, ref}; with
        lead_id None every card (notices such as 已合并 name no lead)."""
        out = []
        marker = f"#{lead_id}" if lead_id is not None else ""
        for m in self.wecom.messages_for(user):
            if m["msgtype"] != "template_card":
                continue
            text = json.dumps(m["card"], ensure_ascii=False)
            if marker not in text:
                continue
            actions = [b["key"].split(":", 1)[0] for b in (m["card"].get("button_list") or [])]
            keys = {b["key"].split(":", 1)[0]: b["key"] for b in (m["card"].get("button_list") or [])}
            links = [j["url"] for j in m["card"].get("jump_list") or [] if j.get("url")]
            out.append({"text": text, "actions": actions, "keys": keys, "ref": m["task_id"], "links": links,
                        "title": (m["card"].get("main_title") or {}).get("title", ""), "platform": "wecom"})
        for ref, card in self.dingtalk.cards.items():
            if not any(user in s for s in card.spaces):
                continue
            view = card.view(user)
            if marker not in view.get("footer", "") + view.get("markdown", ""):
                continue
            buttons = json.loads(view.get("buttons") or "[]")
            out.append({"text": json.dumps(view, ensure_ascii=False),
                        "actions": [b["key"].split(":", 1)[0] for b in buttons if b.get("key")],
                        "keys": {b["key"].split(":", 1)[0]: b["key"] for b in buttons if b.get("key")}, "ref": ref,
                        "links": [b["url"] for b in buttons if b.get("url")],
                        "title": view.get("title", ""), "platform": "dingtalk"})
        return out

    def texts(self, user: str) -> list[str]:
        got = [str((m.get("content") or {}).get("content", "")) for m in self.wecom.messages_for(user)
               if m["msgtype"] == "text"]
        got += [json.dumps(n, ensure_ascii=False, default=str) for n in self.dingtalk.notices_for(user)]
        return got

    def everything(self, user: str) -> str:
        """All the user's phone shows, cards and texts, as one string."""
        cards = [json.dumps(c.view(user), ensure_ascii=False) for c in self.dingtalk.cards.values()
                 if any(user in s for s in c.spaces)]
        return json.dumps(self.wecom.messages_for(user), ensure_ascii=False, default=str) + "".join(cards) + \
            "".join(self.texts(user))

    async def tap(self, user: str, ref: str, key: str, **params: str) -> Any:
        if user in ("chenjing", "qianwei"):
            return await self.dingtalk.tap_card(ref, user, key=key, params=params or None)
        return await self.wecom.send_card_event(user, key, ref)

    async def dead_rows(self) -> dict[str, int]:
        counts = await self.ctx.services.outbox.counts()
        return {k: v for k, v in counts.items() if k == "dead"}


@pytest.fixture
async def crm(aiohttp_server, clock) -> ReferenceReceiver:
    """The CRM: it receives leadbot's change events (a mirror of every lead) and pushes its own
    changes through the CRM API (CRM_AUTH)."""
    rcv = ReferenceReceiver(CRM_SECRET, now=lambda: clock.now().timestamp())
    server = await aiohttp_server(rcv.app(), host="127.0.0.1")
    rcv.url = str(server.make_url("/hook"))  # type: ignore[attr-defined]
    return rcv


@pytest.fixture
def field_owners() -> dict[str, str]:
    """[crm_bridge.field_owners] of the scenario (a test overrides it to let the CRM own owner)."""
    return {}


@pytest.fixture
async def phones(aiohttp_client, aiohttp_server, engine, clock, store, wecom, dingtalk, crm,  # noqa: F811
                 field_owners) -> Phones:
    await store.import_reps(REPS)
    from bot.app import create_app
    from tests.h5.conftest import free_port

    wecom.robots = {"managers-robot"}
    port = free_port()
    settings = e2e_settings(wecom.base_url, dingtalk=dingtalk.dingtalk_settings(), assignment=RULES, sla=SLA,
                            wecom={"manager_robot_key": "managers-robot"},
                            server={"public_url": f"http://127.0.0.1:{port}"},
                            crm_bridge={"webhook_urls": [crm.url], "webhook_secret": CRM_SECRET,  # type: ignore[attr-defined]
                                        "api_tokens": [CRM_TOKEN], "field_owners": field_owners})
    app = create_app(settings, clock=clock, engine=engine, start_workers=False)
    cli = await aiohttp_client(await aiohttp_server(app, port=port))
    wecom.callback_url = str(cli.make_url("/callbacks/wecom"))
    dingtalk.leadbot_url = str(cli.make_url("")).rstrip("/")
    return Phones(cli, wecom, dingtalk, clock)
