"""The platforms' card rules (reference/conformance.md W1, W2, W7, D4): the simulated platforms
refuse what the real ones refuse, each refusal can be switched off, and leadbot lives within
them: a tap answered too late for the synchronous answer still redraws the tapped card (WeCom
with the tap's own code, DingTalk through the update API)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp

from bot.api.wecom_callback import WECOM_EDGE
from sandbox.wecom import SimulatedWeCom
from tests.conftest import AUTH
from tests.scenarios.conftest import Phones

CARD = {"card_type": "button_interaction", "main_title": {"title": "新线索：孙悦"}, "task_id": "t-rules-1",
        "button_list": [{"text": "认领", "style": 1, "key": "claim:x"}]}


async def _api(sb: SimulatedWeCom, api: str, body: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sb.base_url}/cgi-bin/gettoken", params={"corpid": sb.corp_id,
                                                                        "corpsecret": sb.secret}) as r:
            token = (await r.json())["access_token"]
        async with http.post(f"{sb.base_url}/cgi-bin/{api}", params={"access_token": token}, json=body) as r:
            return await r.json()


async def _send_card(sb: SimulatedWeCom, task_id: str = "t-rules-1") -> str:
    sent = await _api(sb, "message/send", {"touser": "wangfang", "msgtype": "template_card",
                                           "agentid": sb.agent_id, "template_card": {**CARD, "task_id": task_id}})
    assert sent["errcode"] == 0
    return sent["response_code"]


def _update(sb: SimulatedWeCom, code: str, card: dict[str, Any]) -> dict[str, Any]:
    return {"userids": ["wangfang"], "agentid": sb.agent_id, "response_code": code, "template_card": card}


async def test_wecom_code_updates_once_and_only_within_72_hours(wecom: SimulatedWeCom, clock) -> None:
    code = await _send_card(wecom)
    assert (await _api(wecom, "message/update_template_card", _update(wecom, code, CARD)))["errcode"] == 0
    again = await _api(wecom, "message/update_template_card", _update(wecom, code, CARD))
    assert again["errcode"] == 40035 and "used" in again["errmsg"]  # W1: spent
    old = await _send_card(wecom, "t-rules-2")
    clock.advance(timedelta(hours=72, seconds=1))
    late = await _api(wecom, "message/update_template_card", _update(wecom, old, {**CARD, "task_id": "t-rules-2"}))
    assert late["errcode"] == 40035  # W1: older than 72 h
    wecom.enforce_codes = False  # the refusal can be switched off
    assert (await _api(wecom, "message/update_template_card", _update(wecom, code, CARD)))["errcode"] == 0


async def test_wecom_update_bodies_are_validated_like_sends(wecom: SimulatedWeCom) -> None:
    code = await _send_card(wecom)
    no_buttons = {k: v for k, v in CARD.items() if k != "button_list"}
    refused = await _api(wecom, "message/update_template_card", _update(wecom, code, no_buttons))
    assert refused["errcode"] == 40035 and "button_list" in refused["errmsg"]  # W7
    wecom.validate_updates = False
    assert (await _api(wecom, "message/update_template_card", _update(wecom, code, no_buttons)))["errcode"] == 0


async def _pool_lead(phones: Phones) -> dict[str, Any]:
    lead = await (await phones.cli.post("/api/v1/leads", json={"name": "孙悦", "channel": "expo"},
                                        headers=AUTH)).json()
    await phones.settle()
    return lead


async def test_a_late_passive_reply_is_ignored_and_leadbot_updates_with_the_taps_code(phones: Phones, store) -> None:
    lead = await _pool_lead(phones)
    (card,) = phones.cards("wangfang", lead["id"])
    # W2 in the sandbox: a reply that takes longer than 5 s is not applied.
    phones.wecom.callback_latency = 6.0
    result = await phones.wecom.send_card_event("wangfang", card["keys"]["claim"], card["ref"])
    assert result.reply and not result.reply_applied and phones.wecom.late_replies
    assert (await store.get_lead(lead["id"])).status == "claimed"
    assert phones.cards("wangfang", lead["id"])[0]["actions"] == ["claim"]  # unchanged on the phone


async def test_leadbot_too_slow_for_the_passive_reply_redraws_with_the_taps_code(phones: Phones, store) -> None:
    lead = await _pool_lead(phones)
    (card,) = phones.cards("wangfang", lead["id"])
    phones.cli.app[WECOM_EDGE].inline_timeout = 0.0  # leadbot cannot answer inside the window
    result = await phones.wecom.send_card_event("wangfang", card["keys"]["claim"], card["ref"])
    assert not result.reply
    await phones.settle()  # the processor waits for the late answer
    (mine,) = phones.cards("wangfang", lead["id"])
    assert "你已认领" in mine["text"] and mine["actions"] == ["advance"], mine
    updates = [c for c in phones.wecom.calls_to("message/update_template_card")
               if c.body.get("template_card", {}).get("task_id") == card["ref"]]
    assert updates and updates[-1].body["response_code"] == result.response_code  # the tap's own code
    assert await phones.dead_rows() == {}


async def test_dingtalk_answer_after_2_seconds_is_ignored_and_the_update_api_redraws(phones: Phones, store) -> None:
    lead = await _pool_lead(phones)
    (card,) = phones.cards("chenjing", lead["id"])
    phones.dingtalk.callback_latency = 2.5  # D4 in the sandbox: the answer came too late
    await phones.dingtalk.tap_card(card["ref"], "chenjing", key=card["keys"]["claim"])
    assert phones.dingtalk.late_answers
    assert phones.cards("chenjing", lead["id"])[0]["actions"] == ["claim"]
    phones.dingtalk.callback_latency = 0.0

    lead2 = await _pool_lead(phones)
    (card2,) = phones.cards("qianwei", lead2["id"])
    inbound = phones.ctx.services.dingtalk_inbound
    inbound.card_budget = 0.0  # leadbot cannot answer inside the 2 s
    await phones.dingtalk.tap_card(card2["ref"], "qianwei", key=card2["keys"]["claim"])
    await phones.settle()
    (mine,) = phones.cards("qianwei", lead2["id"])
    assert "你已认领" in mine["text"] and mine["actions"] == ["advance"], mine
    assert await phones.dead_rows() == {}


async def test_an_untapped_wecom_copy_is_updated_once_then_left_alone(phones: Phones, store) -> None:
    """李强 never taps: his copy's only code (from the send) is spent on the claim; the later
    changes do not try again (no refused call, no dead row)."""
    lead = await _pool_lead(phones)
    (card,) = phones.cards("wangfang", lead["id"])
    await phones.wecom.send_card_event("wangfang", card["keys"]["claim"], card["ref"])
    await phones.settle()
    (other,) = phones.cards("liqiang", lead["id"])
    assert "已被 王芳 认领" in other["text"]
    before = len(phones.wecom.calls_to("message/update_template_card"))
    (mine,) = phones.cards("wangfang", lead["id"])
    assert mine["actions"] == ["advance"], (mine, phones.wecom.calls_to("message/update_template_card"))
    await phones.wecom.send_card_event("wangfang", mine["keys"]["advance"], mine["ref"])
    await phones.settle()
    refused = [c for c in phones.wecom.calls_to("message/update_template_card")[before:] if c.response["errcode"]]
    assert refused == []
    assert await phones.dead_rows() == {}
