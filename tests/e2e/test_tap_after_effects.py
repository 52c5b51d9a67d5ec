"""A tap's after-effects survive an error halfway: the claim commits, then a later step (the
ladder, the other copies) fails. The claim's own transaction recorded the after-effects, so the
inbox's retry (which finds the lead already claimed) finishes them, and when nobody retries the
timer sweep does. Before, the retry answered already_yours and the ladder kept reminding the rep
of a lead they had claimed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm.leads import EFFECT_KINDS
from scheduler.actions import LADDER_KINDS
from tests.conftest import AUTH
from sandbox.demo import wecom_card_json
from tests.e2e.conftest import card_keys as keys_of_sent, ctx_of, deliver, rep_rows, start_leadbot

POOL = {"rules": [{"name": "expo", "match": {"source_channel": "expo"}, "pool": "华东"}]}


def card_keys(message: dict) -> dict[str, str]:
    """Button keys of a card as the phone shows it now: a passive reply stores WeCom's XML shape."""
    return keys_of_sent({"card": wecom_card_json(message.get("card") or {})})


class Boom(RuntimeError):
    pass


async def _pool_lead(cli, wecom, store) -> tuple[int, dict[str, dict]]:
    lead = await (await cli.post("/api/v1/leads", json={"name": "周星", "channel": "expo"}, headers=AUTH)).json()
    await deliver(cli)
    copies = {u: next(m for m in wecom.messages_for(u) if m["msgtype"] == "template_card")
              for u in ("user0", "user1", "user2")}
    return lead["id"], copies


def _fail_once(ctx, times: int = 1) -> list[int]:
    """The step right after the claim commits (cancelling the ladder) raises `times` times."""
    ladder = ctx.services.ladder
    real = ladder.cancel
    calls: list[int] = []

    async def cancel(lead, reason=""):
        calls.append(1)
        if len(calls) <= times:
            raise Boom("injected after the claim committed")
        return await real(lead, reason)

    ladder.cancel = cancel
    return calls


async def _pending(ctx, lead_id: int, kinds) -> list[str]:
    return [t.kind for t in await ctx.services.timers.for_lead(lead_id, ["pending"]) if t.kind in kinds]


async def test_an_error_after_the_claim_is_finished_by_the_retry(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(rep_rows(3))
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, assignment=POOL)
    ctx = ctx_of(cli)
    lead_id, copies = await _pool_lead(cli, wecom, store)
    calls = _fail_once(ctx)

    result = await wecom.send_card_event("user0", card_keys(copies["user0"])["claim"], copies["user0"]["task_id"])
    assert result.status == 200
    assert len(calls) == 1  # the injected failure happened, after the claim committed
    lead = await store.get_lead(lead_id)
    assert lead.status == "claimed"
    assert await _pending(ctx, lead_id, EFFECT_KINDS) == ["effects.claim"]  # recorded with the claim

    await deliver(cli)  # the inbox retries the tap: already claimed, and the after-effects run now

    assert await _pending(ctx, lead_id, EFFECT_KINDS) == []
    assert await _pending(ctx, lead_id, LADDER_KINDS) == []  # no reminder for a claimed lead
    for other in ("user1", "user2"):  # the other copies say who claimed it
        assert "已被 销售0 认领" in str(copies[other]["card"]), copies[other]["card"]
        assert "claim" not in card_keys(copies[other])


async def test_when_nobody_retries_the_sweep_finishes_them(aiohttp_client, engine, clock, store, wecom) -> None:
    await store.import_reps(rep_rows(3))
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, assignment=POOL)
    ctx = ctx_of(cli)
    lead_id, copies = await _pool_lead(cli, wecom, store)
    calls = _fail_once(ctx, times=10)  # the tap and every inbox retry fail

    await wecom.send_card_event("user1", card_keys(copies["user1"])["claim"], copies["user1"]["task_id"])
    for _ in range(6):
        await deliver(cli)
    assert await _pending(ctx, lead_id, EFFECT_KINDS) == ["effects.claim"]
    assert "认领" in str(copies["user0"]["card"]) and "claim" in card_keys(copies["user0"])  # not yet

    calls.extend([1] * 10)  # the fault is gone
    clock.advance(timedelta(minutes=2))
    await ctx.services.scheduler.catch_up()
    await deliver(cli)

    assert await _pending(ctx, lead_id, EFFECT_KINDS) == []
    assert await _pending(ctx, lead_id, LADDER_KINDS) == []
    assert "已被 销售1 认领" in str(copies["user0"]["card"])


async def test_a_second_tap_answers_already_done_and_changes_nothing(aiohttp_client, engine, clock, store,
                                                                     wecom) -> None:
    await store.import_reps(rep_rows(3))
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom, assignment=POOL)
    lead_id, copies = await _pool_lead(cli, wecom, store)
    key, task = card_keys(copies["user2"])["claim"], copies["user2"]["task_id"]
    await wecom.send_card_event("user2", key, task)
    version = (await store.get_lead(lead_id)).version
    clock.advance(timedelta(seconds=1))  # a second tap, not the platform resending the first
    again = await wecom.send_card_event("user2", key, task)
    assert again.status == 200 and again.reply  # answered with the card as it is
    assert "该操作已处理过" in str(copies["user2"]["card"])
    assert (await store.get_lead(lead_id)).version == version
    await deliver(cli)


async def _pass_and_fail(cli, wecom, store, clock, step: str):
    """A WeCom rep passes an offer; `step` of the pass's after-effects raises once: "start" (the
    new owner's ladder, after routing committed and before the offer) or "copies" (redrawing the
    copies, after the offer was enqueued)."""
    ctx = ctx_of(cli)
    lead = await (await cli.post("/api/v1/leads", json={"name": "吴越", "phone": "13500006666"},
                                 headers=AUTH)).json()
    await deliver(cli)
    first = await store.get_rep((await store.get_lead(lead["id"])).owner_id)
    offer = next(m for m in wecom.messages_for(first.wecom_userid) if m["msgtype"] == "template_card")
    calls: list[int] = []
    if step == "start":
        target, name = ctx.services.ladder, "start"
    else:
        target, name = ctx.services.flow, "update_copies"
    real = getattr(target, name)

    async def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise Boom(f"injected in {name}, halfway through the pass's after-effects")
        return await real(*args, **kwargs)

    setattr(target, name, failing)
    clock.advance(timedelta(seconds=1))
    result = await wecom.send_card_event(first.wecom_userid, card_keys(offer)["pass"], offer["task_id"])
    assert result.status == 200 and calls, "the injected failure happened"
    return lead["id"], first, offer


def _offers(wecom, user: str, lead_id: int) -> list[dict]:
    return [m for m in wecom.messages_for(user) if m["msgtype"] == "template_card"
            and f"#{lead_id}" in str(m["card"]) and "claim" in card_keys(m)]


@pytest.mark.parametrize("step", ["start", "copies"])
async def test_a_pass_failing_halfway_offers_the_next_rep_once_on_retry(aiohttp_client, engine, clock, store,
                                                                         wecom, step) -> None:
    await store.import_reps(rep_rows(3))
    cli = await start_leadbot(aiohttp_client, engine, clock, wecom)
    ctx = ctx_of(cli)
    lead_id, first, offer = await _pass_and_fail(cli, wecom, store, clock, step)
    lead = await store.get_lead(lead_id)
    assert lead.owner_id not in (None, first.id)  # routing committed before the failure
    assert await _pending(ctx, lead_id, EFFECT_KINDS) == ["effects.pass"]

    for _ in range(3):  # the inbox retries the tap (answered already done), then nothing more
        await deliver(cli)
        clock.advance(timedelta(seconds=30))
    await ctx.services.scheduler.catch_up()  # and the sweep, past the grace period, finds nothing
    await deliver(cli)

    assert await _pending(ctx, lead_id, EFFECT_KINDS) == []
    second = await store.get_rep((await store.get_lead(lead_id)).owner_id)
    assert second.id == lead.owner_id  # not routed a second time
    # The new owner got the offer, exactly once, whether or not the first run enqueued it.
    assert len(_offers(wecom, second.wecom_userid, lead_id)) == 1, wecom.messages_for(second.wecom_userid)
    # Their ladder runs (a reminder is pending), and the passer's copy says where it went.
    assert await _pending(ctx, lead_id, LADDER_KINDS)
    assert "claim" not in card_keys(offer) and second.name in str(offer["card"]), offer["card"]
    assert (await ctx.services.outbox.counts()).get("dead", 0) == 0
