"""One team on both platforms: a pool lead goes to every member, on WeCom and on DingTalk; the
first tap wins from either side and every other copy, on both platforms, says who claimed it."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import pytest

from bot.context import CTX
from sandbox.dingtalk import DingTalkSandbox
from tests.conftest import AUTH
from tests.e2e.conftest import e2e_settings, wecom  # noqa: F401  (fixture)

REPS = [{"id": "w1", "name": "王芳", "wecom_userid": "wangfang", "team": "华东", "role": "rep"},
        {"id": "w2", "name": "刘强", "wecom_userid": "liuqiang", "team": "华东", "role": "rep"},
        {"id": "d1", "name": "陈静", "dingtalk_userid": "chenjing", "team": "华东", "role": "rep"},
        {"id": "d2", "name": "赵磊", "dingtalk_userid": "zhaolei", "team": "华东", "role": "rep"}]
POOL_RULE = {"rules": [{"name": "expo", "match": {"source_channel": "expo"}, "pool": "华东"}]}


@pytest.fixture
async def dingtalk(clock) -> AsyncIterator[DingTalkSandbox]:
    sb = DingTalkSandbox(clock=clock, users=("chenjing", "zhaolei"))
    await sb.start()
    yield sb
    await sb.stop()


@pytest.fixture
async def both(aiohttp_client, aiohttp_server, engine, clock, store, wecom, dingtalk):
    await store.import_reps(REPS)
    from bot.app import create_app
    from tests.h5.conftest import free_port

    # A real port, so the card callback URL leadbot registers with DingTalk is reachable.
    port = free_port()
    settings = e2e_settings(wecom.base_url, dingtalk=dingtalk.dingtalk_settings(), assignment=POOL_RULE,
                            server={"public_url": f"http://127.0.0.1:{port}"})
    app = create_app(settings, clock=clock, engine=engine, start_workers=False)
    cli = await aiohttp_client(await aiohttp_server(app, port=port))
    wecom.callback_url = str(cli.make_url("/callbacks/wecom"))
    dingtalk.leadbot_url = str(cli.make_url("")).rstrip("/")
    return cli


async def _deliver(cli) -> None:
    ctx = cli.app[CTX]
    await ctx.services.processor.drain()
    await ctx.services.delivery_worker.drain()


def _dingtalk_card(sb: DingTalkSandbox, user: str) -> tuple[str, dict[str, str]]:
    for out_track_id, card in sb.cards.items():
        if any(user in space for space in card.spaces) or user in card.private_data:
            return out_track_id, card.view(user)
    raise AssertionError(f"no DingTalk card for {user}: {list(sb.cards)}")


def _claim_key_from(view: dict[str, str]) -> str:
    return [b["key"] for b in json.loads(view["buttons"]) if b["key"].startswith("claim:")][0]


def _wecom_card(sb: Any, user: str) -> dict[str, Any]:
    return [m for m in sb.messages_for(user) if m["msgtype"] == "template_card"][-1]


async def test_dingtalk_tap_updates_wecom_copies(both, wecom, dingtalk, store) -> None:
    lead = await (await both.post("/api/v1/leads", json={"name": "孙悦", "channel": "expo",
                                                         "phone": "13700001234"}, headers=AUTH)).json()
    await _deliver(both)
    out_track_id, view = _dingtalk_card(dingtalk, "chenjing")
    # Masked until claimed (markdown writes the stars full-width so they are not emphasis).
    assert "1234" in view["markdown"] and "13700001234" not in json.dumps(view, ensure_ascii=False)
    result = await dingtalk.tap_card(out_track_id, "chenjing", key=_claim_key_from(view))
    assert result.status == 200
    assert dingtalk.cards[out_track_id].view("chenjing")["state"] == "claimed"  # answered within the tap
    stored = await store.get_lead(lead["id"])
    assert stored.status == "claimed"
    await _deliver(both)
    for user in ("wangfang", "liuqiang"):
        card = _wecom_card(wecom, user)
        assert "陈静" in json.dumps(card["card"], ensure_ascii=False), card
    other_id, other_view = _dingtalk_card(dingtalk, "zhaolei")
    assert "陈静" in json.dumps(other_view, ensure_ascii=False)
    assert other_view["has_buttons"] == "false"


async def test_simultaneous_taps_across_platforms_give_one_owner(both, wecom, dingtalk, store) -> None:
    lead = await (await both.post("/api/v1/leads", json={"name": "周杰", "channel": "expo"}, headers=AUTH)).json()
    await _deliver(both)
    taps = []
    for user in ("wangfang", "liuqiang"):
        card = _wecom_card(wecom, user)
        key = [b["key"] for b in card["card"]["button_list"] if b["key"].startswith("claim:")][0]
        taps.append(wecom.send_card_event(user, key, card["task_id"]))
    for user in ("chenjing", "zhaolei"):
        out_track_id, view = _dingtalk_card(dingtalk, user)
        taps.append(dingtalk.tap_card(out_track_id, user, key=_claim_key_from(view)))
    results = await asyncio.gather(*taps)
    assert all(r.status == 200 for r in results)
    stored = await store.get_lead(lead["id"])
    assert stored.status == "claimed" and stored.owner_id is not None
    winner = await store.get_rep(stored.owner_id)
    await _deliver(both)
    for user in ("wangfang", "liuqiang", "chenjing", "zhaolei"):
        if user in (winner.wecom_userid, winner.dingtalk_userid):
            continue
        shown = (json.dumps(_wecom_card(wecom, user), ensure_ascii=False, default=str) if user in ("wangfang", "liuqiang")
                 else json.dumps(_dingtalk_card(dingtalk, user)[1], ensure_ascii=False))
        assert winner.name in shown, (user, shown[:300])
