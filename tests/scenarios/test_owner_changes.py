"""A change of owner from the CRM does what a manager's reassign does, and every SLA ladder step
redraws the lead's copies within each platform's rules, through leadbot's HTTP routes against the
strict simulated platforms (spent or expired WeCom codes refused, update bodies checked):

- the CRM names a new owner (the owner command, or an upsert when the CRM owns the field): the
  previous owner is told the lead was taken from them (on their card while a code is left, else in
  a new message), the new owner is offered it with their own ladder, the manager's escalation stays
  an escalation and says 已改派给 X;
- a remind or escalate step moves the countdown on the DingTalk copies (updated by outTrackId as
  often as needed); WeCom copies are never updated with a spent code, and nothing goes dead.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.scenarios.conftest import CRM_AUTH, Phones

REP_USERS = ("wangfang", "liqiang", "chenjing", "qianwei")


async def _no_dead(phones: Phones) -> None:
    counts = await phones.ctx.services.outbox.counts()
    assert counts.get("dead", 0) == 0, await phones.ctx.services.outbox.list(("dead",))
    # A WeCom update with a spent or expired code would be refused and skipped: none was tried.
    assert counts.get("skipped", 0) == 0, await phones.ctx.services.outbox.list(("skipped",))
    assert not any("投递告警" in t for u in (*REP_USERS, "zhou") for t in phones.texts(u))


async def _crm_lead(phones: Phones, external_id: str, owner: str, name: str) -> int:
    """The CRM creates a lead it has already given to `owner` (a rep id of the reps CSV)."""
    phone = "136" + "".join(c for c in external_id if c.isdigit()).rjust(8, "0")
    resp = await phones.cli.put(f"/api/v1/leads/{external_id}", json={"name": name, "phone": phone,
                                                                       "owner": owner}, headers=CRM_AUTH)
    assert resp.status == 201, await resp.text()
    await phones.settle()
    return int((await resp.json())["lead"]["id"])


async def _crm_owner(phones: Phones, external_id: str, owner: str, how: str) -> None:
    if how == "command":
        resp = await phones.cli.post(f"/api/v1/leads/{external_id}/owner", json={"owner": owner}, headers=CRM_AUTH)
    else:  # the CRM's whole record, with the owner field the CRM owns in this deployment
        resp = await phones.cli.put(f"/api/v1/leads/{external_id}", json={"owner": owner}, headers=CRM_AUTH)
    assert resp.status == 200, await resp.text()
    assert "owner" in (await resp.json())["changed"]
    await phones.settle()


def _minutes_left(card: dict) -> int | None:
    found = re.search(r"还剩 (\d+) 分钟", card["text"])
    return int(found.group(1)) if found else None


@pytest.mark.parametrize(("how", "field_owners"), [("command", {}), ("upsert", {"owner": "crm"})])
async def test_crm_owner_change_is_a_reassign(phones: Phones, store, how: str, field_owners) -> None:
    lead_id = await _crm_lead(phones, "CRM-31", "w2", "冯晨")
    (offer,) = phones.cards("liqiang", lead_id)
    assert offer["actions"] == ["claim", "pass"], offer
    # Nobody touches it: a reminder to 李强, then the escalation to 周经理.
    await phones.tick(2.1)
    await phones.tick(2.0)
    (escalation,) = [c for c in phones.cards("zhou", lead_id) if "reassign" in c["actions"]]
    assert "李强" in escalation["text"]
    await _no_dead(phones)

    await _crm_owner(phones, "CRM-31", "d1", how)

    lead = await store.get_lead(lead_id)
    chen = await store.get_rep(lead.owner_id)
    assert chen.name == "陈静" and lead.status == "assigned" and lead.claimed_at is None
    # The escalation stays an escalation, says to whom it went, and has nothing left to tap.
    (esc,) = [c for c in phones.cards("zhou", lead_id) if c["ref"] == escalation["ref"]]
    assert "升级" in esc["title"] and "已改派给 陈静" in esc["text"] and esc["actions"] == [], esc
    # 李强 is told it was taken from him; none of his cards still offers it.
    told = [c for c in phones.cards("liqiang", lead_id) if "陈静" in c["text"]] or \
        [t for t in phones.texts("liqiang") if "陈静" in t]
    assert told, (phones.cards("liqiang", lead_id), phones.texts("liqiang"))
    assert all("claim" not in c["actions"] and "pass" not in c["actions"] for c in phones.cards("liqiang", lead_id)), \
        phones.cards("liqiang", lead_id)
    # 陈静 (DingTalk) is offered it, once, with her own ladder.
    offers = [c for c in phones.cards("chenjing", lead_id) if c["actions"] == ["claim", "pass"]]
    assert len(offers) == 1, phones.cards("chenjing", lead_id)
    await _no_dead(phones)
    await phones.tick(2.1)
    assert any("snooze" in c["actions"] for c in phones.cards("chenjing", lead_id)), phones.cards("chenjing", lead_id)
    assert not [c for c in phones.cards("liqiang", lead_id) if "snooze" in c["actions"]]
    await _no_dead(phones)


async def test_crm_owner_change_days_later_tells_the_claimer_by_message(phones: Phones, store) -> None:
    """王芳 claimed the lead days ago: the code her tap brought is past WeCom's 72 h, so her card
    cannot change. She is told in a new message; the CRM's new owner gets the offer."""
    lead_id = await _crm_lead(phones, "CRM-32", "w1", "蒋涛")
    (offer,) = phones.cards("wangfang", lead_id)
    await phones.tap("wangfang", offer["ref"], offer["keys"]["claim"])
    await phones.settle()
    (mine,) = phones.cards("wangfang", lead_id)
    assert "你已认领" in mine["text"], mine
    phones.clock.advance(timedelta(days=3, hours=1))
    await _no_dead(phones)

    await _crm_owner(phones, "CRM-32", "d2", "command")

    assert (await store.get_lead(lead_id)).owner_id == (await store.rep_by_platform_id("dingtalk", "qianwei")).id
    (unchanged,) = phones.cards("wangfang", lead_id)
    assert unchanged["text"] == mine["text"]  # no code left to redraw it with: not even tried
    told = [t for t in phones.texts("wangfang") if "蒋涛" in t and "钱伟" in t]
    assert len(told) == 1, phones.texts("wangfang")
    assert [c["actions"] for c in phones.cards("qianwei", lead_id)] == [["claim", "pass"]]
    await _no_dead(phones)


async def test_ladder_steps_move_the_dingtalk_countdown_and_spare_wecom_codes(phones: Phones, store) -> None:
    on_dingtalk = await _crm_lead(phones, "CRM-41", "d1", "韩梅")
    on_wecom = await _crm_lead(phones, "CRM-42", "w1", "陆明")
    (dt_offer,) = phones.cards("chenjing", on_dingtalk)
    (wc_offer,) = phones.cards("wangfang", on_wecom)
    assert _minutes_left(dt_offer) == 4 and _minutes_left(wc_offer) == 4  # to the escalation

    await phones.tick(2.1)  # remind
    (dt_offer,) = [c for c in phones.cards("chenjing", on_dingtalk) if c["ref"] == dt_offer["ref"]]
    assert _minutes_left(dt_offer) in (1, 2), dt_offer  # redrawn: 1.9 minutes to the escalation
    assert dt_offer["actions"] == ["claim", "pass"]
    await _no_dead(phones)

    await phones.tick(2.0)  # escalate: the first touch is overdue now, as the manager is told
    (dt_offer,) = [c for c in phones.cards("chenjing", on_dingtalk) if c["ref"] == dt_offer["ref"]]
    assert _minutes_left(dt_offer) is None and "超时" in dt_offer["text"], dt_offer  # no fresh countdown
    assert dt_offer["actions"] == ["claim", "pass"]
    reminders = [c for c in phones.cards("chenjing", on_dingtalk) if "snooze" in c["actions"]]
    assert reminders and _minutes_left(reminders[0]) is None and "超时" in reminders[0]["text"], reminders
    await phones.tick(3.0)  # minutes later it says how long
    (dt_offer,) = [c for c in phones.cards("chenjing", on_dingtalk) if c["ref"] == dt_offer["ref"]]
    assert "已超时" in dt_offer["text"], dt_offer
    # WeCom: the copy still offers the lead; an update was sent only with an unspent code.
    (wc_now,) = [c for c in phones.cards("wangfang", on_wecom) if c["ref"] == wc_offer["ref"]]
    assert wc_now["actions"] == ["claim", "pass"]
    await _no_dead(phones)
