"""Conformance D11 (suspected per user; the strict reading): DingTalk card data. cardParamMap keys
<= 100 B, values <= 1 KB, one user's privateData <= 1 KB, in UTF-8 bytes as sent. The simulated
DingTalk refuses what breaks them with its error shape (switchable), and leadbot, driven through
its HTTP routes, sends each user only what differs from the shared data, within the limit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.platforms.dingtalk.errors import PermanentError
from tests.conftest import AUTH
from tests.scenarios.conftest import Phones

LONG = "杭州市西湖区文三路数字经济产业园区客户成功中心华东大区" * 6


def _sent_bytes(entry: Any) -> int:
    return len(json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _card_bodies(phones: Phones) -> list[dict[str, Any]]:
    return [c.body for c in phones.dingtalk.calls
            if c.path in ("/v1.0/card/instances/createAndDeliver", "/v1.0/card/instances") and isinstance(c.body, dict)]


async def test_the_simulated_dingtalk_refuses_card_data_over_the_limits(phones: Phones) -> None:
    client = phones.ctx.services.dingtalk_client
    whole = {f"k{i}": "数" * 300 for i in range(3)}  # 3 values of 900 B: each fine, 2.7 KB for one user
    with pytest.raises(PermanentError) as refused:
        await client.create_and_deliver_card("d11-1", card_data={"title": "x"}, user_ids=["chenjing"],
                                             private_data={"chenjing": whole})
    assert refused.value.code == "invalidParameter" and "privateData" in str(refused.value.body)
    call = phones.dingtalk.calls_to("/v1.0/card/instances/createAndDeliver")[-1]
    assert call.status == 400 and set(call.response) == {"code", "message", "requestid"}
    with pytest.raises(PermanentError):  # a value over 1 KB
        await client.create_and_deliver_card("d11-2", card_data={"body": "数" * 342}, user_ids=["chenjing"])
    with pytest.raises(PermanentError):  # a key over 100 B
        await client.create_and_deliver_card("d11-3", card_data={"键" * 34: "x"}, user_ids=["chenjing"])
    await client.create_and_deliver_card("d11-4", card_data={"title": "x"}, user_ids=["chenjing"])
    with pytest.raises(PermanentError):  # the update API holds to the same limits
        await client.update_card("d11-4", private_data={"chenjing": whole})
    assert "d11-1" not in phones.dingtalk.cards

    phones.dingtalk.enforce_param_limits = False  # the rule can be switched off
    await client.create_and_deliver_card("d11-1", card_data={"title": "x"}, user_ids=["chenjing"],
                                         private_data={"chenjing": whole})
    assert phones.dingtalk.cards["d11-1"].view("chenjing")["k0"] == "数" * 300


async def test_leadbot_sends_each_user_only_their_delta_within_one_kilobyte(phones: Phones, store) -> None:
    """A pool lead with long details reaches both DingTalk reps; 陈静 claims it with a tap. Every
    card body and the tap's answer keep each user's privateData within 1 KB as sent, so DingTalk
    applies them: her copy says 你已认领 (before, the whole card went as her private data and the
    answer was refused), 钱伟's says who took it."""
    lead = await (await phones.cli.post("/api/v1/leads", headers=AUTH, json={
        "name": "孙悦", "channel": "expo", "company": LONG, "phone": "13912345678", "note": LONG * 2,
        "region": "华东", "amount": "120万", "product_line": LONG[:40]})).json()
    await phones.settle()
    (mine,) = phones.cards("chenjing", lead["id"])
    assert mine["actions"][0] == "claim"
    result = await phones.tap("chenjing", mine["ref"], mine["keys"]["claim"])
    assert result.status == 200
    answer = result.body["userPrivateData"]
    assert _sent_bytes(answer) <= 1024
    await phones.settle()

    assert phones.dingtalk.refused_answers == [] and phones.dingtalk.late_answers == []
    (mine,) = phones.cards("chenjing", lead["id"])
    assert "你已认领" in mine["title"] and "claim" not in mine["actions"], mine
    (theirs,) = phones.cards("qianwei", lead["id"])
    assert "陈静" in theirs["text"] and "claim" not in theirs["actions"]
    bodies = _card_bodies(phones)
    assert bodies and all(_sent_bytes(entry) <= 1024 for b in bodies for entry in (b.get("privateData") or {}).values())
    for b in bodies:  # a user's private data is their buttons plus what differs from the shared data
        shared = b.get("cardData", {}).get("cardParamMap", {})
        for entry in (b.get("privateData") or {}).values():
            assert all(k in ("buttons", "has_buttons") or v != shared.get(k) for k, v in entry["cardParamMap"].items())
    assert await phones.dead_rows() == {}
