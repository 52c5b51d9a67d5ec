"""An escalation storm a manager can act on, driven as the platforms drive it (injected clock):
eight leads time out together, the manager gets three escalations and one storm digest card with
全部改派 and 查看全部; one lead is claimed before the manager taps; the tap reassigns the rest
and the card says which one was skipped and why. On WeCom (template card, passive reply), on
DingTalk (interactive card, callback answer), and as plain text with the H5 full list (masked
phones, a reassign per lead, the same token and actor checks)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from bot.context import CTX
from store.db import session_factory
from store.models import OutboxItem
from sandbox.demo import wecom_card_json
from sandbox.dingtalk import DingTalkSandbox
from tests.conftest import AUTH, make_settings
from tests.e2e.conftest import card_keys, deliver, start_leadbot

SLA = {"first_touch_remind": "2m", "first_touch_escalate": "4m", "first_touch_reassign": "30m",
       "pool_return": "2h"}
# Every lead misses its first touch here: with the default streak limit (3) the reps would leave
# the rotation and the batch would go to the pool, which is not what these tests look at.
ASSIGNMENT = {"miss_streak_limit": 100}
LEADS = 8  # past 3 escalations a minute to one manager: 3 on their own, 5 in one storm digest


def reps(manager_delivery: str = "card", platform: str = "wecom_userid", prefix: str = "") -> list[dict[str, str]]:
    people = [("m1", "周经理", "zhou", "manager"), ("r1", "张三", "zhangsan", "rep"), ("r2", "李四", "lisi", "rep"),
              ("r3", "王五", "wangwu", "rep")]
    return [{"id": i, "name": n, platform: prefix + u, "team": "华东", "role": role, "weight": "1",
             "delivery": manager_delivery if role == "manager" else "card", **({"manager": "m1"} if role == "rep" else {})}
            for i, n, u, role in people]


async def _tick(app, clock, minutes: float) -> None:
    clock.advance(timedelta(minutes=minutes))
    ctx = app[CTX]
    await ctx.services.scheduler.sweep_once()
    await ctx.services.processor.drain()
    await ctx.services.delivery_worker.drain()


async def _storm_row(engine) -> OutboxItem:
    async with session_factory(engine)() as s:
        rows = (await s.execute(select(OutboxItem).where(OutboxItem.idempotency_key.like("storm:%"),
                                                         ~OutboxItem.idempotency_key.like("%:text")))).scalars().all()
    assert len(rows) == 1, [r.idempotency_key for r in rows]
    return rows[0]


async def _storm(app, clock, store, post) -> tuple[OutboxItem, dict[int, int]]:
    """Eight leads, then both ladder steps: returns the storm digest row and each lead's owner."""
    ids = [(await post({"name": f"客户{i}", "company": f"公司{i}", "phone": f"1380000{i:04d}"}))["id"]
           for i in range(LEADS)]
    await _tick(app, clock, 0)
    await _tick(app, clock, 2.1)
    await _tick(app, clock, 2.0)
    owners = {i: (await store.get_lead(i)).owner_id for i in ids}
    row = await _storm_row(app[CTX].engine)
    assert row.state == "sent" and row.payload["count"] == 5
    return row, owners


async def _claim(app, store, clock, lead_id: int, rep_id: int) -> None:
    """The owner claims it (the same ActionService a tap or the H5 page uses)."""
    from bot.actions.service import Actor

    services = app[CTX].services
    key = services.buttons.keys(await store.get_lead(lead_id), f"rep:{rep_id}", ("claim",), clock.now())["claim"]
    assert (await services.actions.perform(key, Actor("h5"))).code == "claimed"


def _wecom_cards(wecom, user: str) -> list[dict]:
    return [m for m in wecom.messages_for(user) if m["msgtype"] == "template_card"]


async def test_wecom_storm_card_reassigns_the_batch_and_reports_what_it_skipped(
        aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(reps())
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, sla=SLA, assignment=ASSIGNMENT)

    async def post(body):
        return await (await cli.post("/api/v1/leads", json=body, headers=AUTH)).json()

    row, owners = await _storm(cli.app, clock, store, post)
    storm_ids = list(row.payload["lead_ids"])
    # What the manager's phone shows: three escalations and one storm card.
    storm = [m for m in _wecom_cards(wecom, "zhou") if m["content"]["main_title"]["title"].startswith("华东团队")]
    assert len(storm) == 1
    card = storm[0]["content"]
    assert card["main_title"]["title"] == "华东团队 5 条线索超时"
    buttons = {b["text"]: b for b in card["button_list"]}
    assert buttons["全部改派"]["key"].startswith("reassign:") and buttons["查看全部"]["type"] == 1
    assert card["card_action"]["url"] == buttons["查看全部"]["url"]
    assert "1380000" not in json.dumps(card, ensure_ascii=False)  # no phone number on the card

    # One lead of the storm is claimed by its owner before the manager gets to it.
    claimed = storm_ids[1]
    claimer = await store.get_rep(owners[claimed])
    name = (await store.get_lead(claimed)).name
    offer = [c for c in _wecom_cards(wecom, claimer.wecom_userid)
             if name in c["content"]["main_title"]["title"] and "claim" in card_keys(c)][0]
    await wecom.send_card_event(claimer.wecom_userid, card_keys(offer)["claim"], offer["task_id"])
    assert (await store.get_lead(claimed)).claimed_at is not None

    # The manager's key is bound to the manager: a rep tapping it changes nothing.
    await wecom.send_card_event("zhangsan", buttons["全部改派"]["key"], storm[0]["task_id"])
    assert {i: (await store.get_lead(i)).owner_id for i in storm_ids} == {i: owners[i] for i in storm_ids}

    result = await wecom.send_card_event("zhou", buttons["全部改派"]["key"], storm[0]["task_id"])
    assert result.reply_applied
    now_shown = wecom_card_json([m for m in wecom.messages_for("zhou") if m["task_id"] == storm[0]["task_id"]][0]["card"])
    assert now_shown["main_title"]["title"] == "已改派 4 条，跳过 1 条"
    assert f"跳过 {name} · {(await store.get_lead(claimed)).company}：已被 {claimer.name} 认领" \
        in now_shown["sub_title_text"].splitlines()[0]
    assert "button_list" not in now_shown  # nothing left to tap twice; the list is still a tap away
    assert now_shown["card_action"]["url"].startswith("http://leadbot.test/a/")
    for i in storm_ids:
        lead = await store.get_lead(i)
        if i == claimed:
            assert lead.owner_id == owners[i] and lead.claimed_at is not None
        else:
            assert lead.owner_id not in (None, owners[i]) and lead.claimed_at is None
    # The escalations sent on their own were not part of the batch.
    for i in set(owners) - set(storm_ids):
        assert (await store.get_lead(i)).owner_id == owners[i]
    await deliver(cli)
    for i in storm_ids:
        if i != claimed:
            owner = await store.get_rep((await store.get_lead(i)).owner_id)
            assert any("claim" in card_keys(c) for c in _wecom_cards(wecom, owner.wecom_userid))

    # WeCom retrying the same callback moves nothing twice (the inbox's dedupe key).
    moved = {i: (await store.get_lead(i)).owner_id for i in storm_ids}
    await wecom.resend(result)
    await deliver(cli)
    assert {i: (await store.get_lead(i)).owner_id for i in storm_ids} == moved


@pytest.fixture
async def dingtalk(clock):
    sb = DingTalkSandbox(clock=clock, users=("dt_zhou", "dt_zhangsan", "dt_lisi", "dt_wangwu"))
    await sb.start()
    yield sb
    await sb.stop()


async def test_dingtalk_storm_card_reassigns_the_batch(aiohttp_client, engine, clock, store, dingtalk) -> None:
    from bot.app import create_app

    await store.import_reps(reps(platform="dingtalk_userid", prefix="dt_"))
    settings = make_settings(dingtalk=dingtalk.dingtalk_settings(), sla=SLA, assignment=ASSIGNMENT)
    app = create_app(settings, clock=clock, engine=engine, start_workers=False)
    cli = await aiohttp_client(app)
    dingtalk.leadbot_url = str(cli.make_url("")).rstrip("/")

    async def post(body):
        return await (await cli.post("/api/v1/leads", json=body, headers=AUTH)).json()

    row, owners = await _storm(app, clock, store, post)
    storm_ids = list(row.payload["lead_ids"])
    out_track_id = row.result["outTrackId"]
    view = dingtalk.cards[out_track_id].view("dt_zhou")
    assert view["title"] == "华东团队 5 条线索超时"
    buttons = {b["text"]: b for b in json.loads(view["buttons"])}
    assert buttons["全部改派"]["key"].startswith("reassign:") and buttons["查看全部"]["url"] == view["link"]

    # One lead is claimed first (through the store: the tap path is WeCom's test above).
    claimed = storm_ids[0]
    await _claim(app, store, clock, claimed, owners[claimed])
    result = await dingtalk.tap_card(out_track_id, "dt_zhou", key=buttons["全部改派"]["key"])
    assert result.status == 200
    shown = dingtalk.cards[out_track_id].view("dt_zhou")
    assert shown["title"] == "已改派 4 条，跳过 1 条" and shown["has_buttons"] == "false"
    assert "已被" in shown["body"] and "认领" in shown["body"]
    for i in storm_ids:
        assert ((await store.get_lead(i)).owner_id == owners[i]) == (i == claimed)


async def test_text_fallback_links_the_full_list_with_masked_phones_and_per_lead_reassign(
        aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(reps(manager_delivery="text"))
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, sla=SLA, assignment=ASSIGNMENT)

    async def post(body):
        return await (await cli.post("/api/v1/leads", json=body, headers=AUTH)).json()

    row, owners = await _storm(cli.app, clock, store, post)
    storm_ids = list(row.payload["lead_ids"])
    texts = [m["content"]["content"] for m in wecom.messages_for("zhou") if m["msgtype"] == "text"]
    digest = [x for x in texts if x.startswith("华东团队 5 条线索超时")]
    assert len(digest) == 1, texts
    link = re.search(r"^全部改派 → (http://leadbot\.test/a/\S+)$", digest[0], re.M)  # the list, for every action
    assert link, digest[0]
    path = urlsplit(link.group(1)).path

    page = await cli.get(path)
    html = await page.text()
    assert page.status == 200 and "超时线索（5 条）" in html
    for i in storm_ids:
        lead = await store.get_lead(i)
        assert lead.name in html
        assert lead.phone not in html and f"{lead.phone[:3]}****{lead.phone[-4:]}" in html
    keys = dict(re.findall(r'data-lead="(\d+)" data-open="true">.*?name="key" value="([^"]+)"', html, re.S))
    assert set(map(int, keys)) == set(storm_ids)

    # Per lead: the first one reassigned from the page; then its owner claims another before the
    # manager gets to it, and that one's own button says it was claimed, changing nothing.
    first, second = storm_ids[0], storm_ids[1]
    answer = await (await cli.post(path, data={"key": keys[str(first)]})).text()
    moved_to = await store.get_rep((await store.get_lead(first)).owner_id)
    assert moved_to.id != owners[first] and f"→ {moved_to.name}" in answer
    await _claim(cli.app, store, clock, second, owners[second])
    answer = await (await cli.post(path, data={"key": keys[str(second)]})).text()
    assert "已被" in answer and (await store.get_lead(second)).owner_id == owners[second]

    # Keys this page does not offer are refused: one bound to someone else, one for a lead
    # outside this storm (an escalation that went out on its own).
    buttons = cli.app[CTX].services.buttons
    theirs = buttons.keys(await store.get_lead(first), f"rep:{owners[first]}", ("reassign",), clock.now())
    assert (await cli.post(path, data={"key": theirs["reassign"]})).status == 403
    outside = next(i for i in owners if i not in storm_ids)
    manager = (await store.get_rep(row.rep_id)).id
    mine = buttons.keys(await store.get_lead(outside), f"rep:{manager}", ("reassign",), clock.now())
    assert (await cli.post(path, data={"key": mine["reassign"]})).status == 403
    assert (await store.get_lead(outside)).owner_id == owners[outside]

    # 全部改派 from the page: the rest move, the two handled ones are skipped and said so.
    html = await (await cli.get(path)).text()
    all_key = re.search(r'name="key" value="([^"]+)">\s*<button type="submit" class="primary" data-action="reassign-all"',
                        html).group(1)
    answer = await (await cli.post(path, data={"key": all_key})).text()
    assert "已改派 3 条，跳过 2 条" in answer
    for i in storm_ids[2:]:
        assert (await store.get_lead(i)).owner_id != owners[i]

    # A forged or expired link opens nothing.
    assert (await cli.get(path[:-3] + "abc")).status == 403
    clock.advance(timedelta(days=3, minutes=1))
    assert (await cli.get(path)).status == 410
