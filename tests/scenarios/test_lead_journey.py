"""One lead's whole journey, on both platforms, through leadbot's HTTP routes against the strict
simulated platforms (spent or expired WeCom codes refused, late answers ignored, update bodies
checked): after every step, what every phone shows matches the lead, and the outbox holds no
dead row (an ordinary change of a lead never dead-letters or alerts an admin).

Pool lead: offer to the pool -> claim race across platforms -> advance, then one refused by a
stage gate. Assigned lead: pass -> a stale claim on the passed card -> manager reassign
from the escalation -> the ladder (remind, escalate, reassign) -> merge and undo -> pool return.
"""

from __future__ import annotations

import asyncio

from tests.conftest import AUTH
from tests.scenarios.conftest import Phones

REP_USERS = ("wangfang", "liqiang", "chenjing", "qianwei")
NAMES = {"wangfang": "王芳", "liqiang": "李强", "chenjing": "陈静", "qianwei": "钱伟", "zhou": "周经理"}


async def _no_dead(phones: Phones) -> None:
    assert await phones.dead_rows() == {}, await phones.ctx.services.outbox.list(("dead",))
    assert not any("投递告警" in t for u in (*REP_USERS, "zhou") for t in phones.texts(u))


def _user_of(rep) -> str:
    return rep.wecom_userid or rep.dingtalk_userid


async def test_pool_offer_claim_race_and_a_gated_advance(phones: Phones, store) -> None:
    lead = await (await phones.cli.post("/api/v1/leads", json={"name": "孙悦", "channel": "expo",
                                                               "phone": "13700001234"}, headers=AUTH)).json()
    await phones.settle()
    # Offer to the pool: every rep, on either platform, has one pool card with 认领.
    for user in REP_USERS:
        cards = phones.cards(user, lead["id"])
        assert len(cards) == 1 and cards[0]["actions"] == ["claim"], (user, cards)
        assert "公海" in cards[0]["text"]
    await _no_dead(phones)

    # Claim race: a WeCom and a DingTalk rep tap at the same moment; exactly one wins.
    taps = [phones.tap(u, phones.cards(u, lead["id"])[0]["ref"], phones.cards(u, lead["id"])[0]["keys"]["claim"])
            for u in ("wangfang", "chenjing")]
    results = await asyncio.gather(*taps)
    assert all(r.status == 200 for r in results)
    stored = await store.get_lead(lead["id"])
    assert stored.status == "claimed"
    winner = _user_of(await store.get_rep(stored.owner_id))
    loser = "chenjing" if winner == "wangfang" else "wangfang"
    await phones.settle()
    mine = phones.cards(winner, lead["id"])[0]
    assert "你已认领" in mine["text"] and mine["actions"] == ["advance"], mine  # WeCom and DingTalk alike
    assert "13700001234" in mine["text"]  # the claimer sees the full number
    for user in REP_USERS:
        if user == winner:
            continue
        (card,) = phones.cards(user, lead["id"])
        # The loser's tap was answered from the lead's state: claimed by the winner, nothing to tap.
        assert f"已被 {NAMES[winner]} 认领" in card["text"] and card["actions"] == [], (user, card)
        assert "13700001234" not in card["text"]
    assert loser
    await _no_dead(phones)

    # Advance: into the first stage (no gate), shown on the claimer's card with the next 推进.
    await phones.tap(winner, mine["ref"], mine["keys"]["advance"])
    await phones.settle()
    assert (await store.get_lead(lead["id"])).stage == "线索验证"
    mine = phones.cards(winner, lead["id"])[0]
    assert "线索验证" in mine["text"] and mine["actions"] == ["advance"], mine
    # ... then to 痛点诊断, whose gate needs a document: refused, the card stays as it was.
    await phones.tap(winner, mine["ref"], mine["keys"]["advance"])
    await phones.settle()
    assert (await store.get_lead(lead["id"])).stage == "线索验证"
    assert "痛点诊断" in phones.everything(winner)  # the refusal names the gate (a card or a text)
    mine = phones.cards(winner, lead["id"])[0]
    assert "你已认领" in mine["text"] and mine["actions"] == ["advance"], mine
    await _no_dead(phones)


async def test_pass_reassign_ladder_merge_and_pool_return(phones: Phones, store, crm) -> None:
    lead = await (await phones.cli.post("/api/v1/leads", json={"name": "高飞", "phone": "13911112222"},
                                        headers=AUTH)).json()
    await phones.settle()
    first = await store.get_rep((await store.get_lead(lead["id"])).owner_id)
    a = _user_of(first)
    offer = phones.cards(a, lead["id"])[0]
    assert offer["actions"] == ["claim", "pass"], offer

    # Pass: the lead goes to the next rep (assigned, not claimed); the passer's card says where.
    await phones.tap(a, offer["ref"], offer["keys"]["pass"])
    await phones.settle()
    second = await store.get_rep((await store.get_lead(lead["id"])).owner_id)
    b = _user_of(second)
    assert second.id != first.id
    (passed,) = phones.cards(a, lead["id"]) or [c for c in phones.wecom.messages_for(a)
                                                 if c["msgtype"] == "template_card"][-1:]
    passed = passed if "actions" in passed else {"text": str(passed["card"]), "actions": [], "title": "",
                                                  "ref": passed["task_id"]}
    assert passed["actions"] == [] and "已放弃" in passed["text"], passed
    assert "认领" not in passed["title"], passed  # nobody claimed it: no "已被 X 认领"
    assert phones.cards(b, lead["id"])[-1]["actions"] == ["claim", "pass"]
    await _no_dead(phones)

    # A stale claim on the passed card never claims; the card is redrawn, not "claimed by".
    await phones.tap(a, passed["ref"], offer["keys"]["claim"])
    await phones.settle()
    now = await store.get_lead(lead["id"])
    assert now.claimed_at is None and now.owner_id == second.id
    for card in phones.cards(a, lead["id"]):
        assert f"已被 {second.name} 认领" not in card["text"], card
    await _no_dead(phones)

    # The ladder: a reminder to B, then the escalation to the manager.
    await phones.tick(2.1)
    reminders = [c for c in phones.cards(b, lead["id"]) if "snooze" in c["actions"]]
    assert reminders, phones.cards(b, lead["id"])
    await phones.tick(2.0)
    escalation = [c for c in phones.cards("zhou", lead["id"]) if "reassign" in c["actions"]][-1]
    assert "超时未跟进" in escalation["title"] and "还剩" not in escalation["text"], escalation

    # Manager reassign from the escalation: it stays an escalation and says to whom.
    await phones.tap("zhou", escalation["ref"], escalation["keys"]["reassign"])
    await phones.settle()
    third = await store.get_rep((await store.get_lead(lead["id"])).owner_id)
    c = _user_of(third)
    assert third.id != second.id
    (esc,) = [x for x in phones.cards("zhou", lead["id"]) if x["ref"] == escalation["ref"]]
    assert "升级" in esc["title"] and f"已改派给 {third.name}" in esc["text"] and esc["actions"] == [], esc
    # B lost the lead: told on their cards (reminder stays a reminder) or by a message.
    told = [x for x in phones.cards(b, lead["id"]) if third.name in x["text"]] or \
        [t for t in phones.texts(b) if third.name in t]
    assert told, (phones.cards(b, lead["id"]), phones.texts(b))
    for card in phones.cards(b, lead["id"]):
        if "提醒" in card["title"] or "reminder" in card["text"]:
            assert card["actions"] in ([], ["claim", "snooze"])
    assert "claim" in phones.cards(c, lead["id"])[-1]["actions"]
    await _no_dead(phones)

    # The ladder again for C: remind, escalate, then the SLA reassign moves it on.
    await phones.tick(2.1)
    await phones.tick(2.0)
    await phones.tick(26.0)
    fourth = await store.get_lead(lead["id"])
    assert fourth.owner_id not in (None, third.id)
    await _no_dead(phones)

    # Pool return at the cycle's deadline: the lead is back in the pool, offered to the team.
    # The sweep runs every few seconds; ticks of a few minutes let each step's message arrive
    # before the next step changes the lead (as it would).
    for _ in range(40):
        await phones.tick(4)
        if (await store.get_lead(lead["id"])).status == "pool":
            break
    pooled = await store.get_lead(lead["id"])
    assert pooled.status == "pool" and pooled.owner_id is None
    for user in REP_USERS:
        assert any(x["actions"] == ["claim"] and "公海" in x["text"] for x in phones.cards(user, lead["id"])), user
        # Nothing else of the lead is left to tap: no offer, reminder or 认领 of an earlier owner.
        live = [x for x in phones.cards(user, lead["id"]) if x["actions"] and "公海" not in x["text"]]
        assert live == [], (user, live)
    await _no_dead(phones)
    # The CRM heard of it: its mirror shows the lead in the pool, owned by nobody.
    assert crm.types_for("lead", lead["id"])[-1] == "lead.pooled", crm.types_for("lead", lead["id"])
    mirrored = crm.mirror[("lead", lead["id"])]
    assert mirrored["status"] == "pool" and mirrored["owner"] is None, mirrored
    assert crm.refused == [] and crm.versions[("lead", lead["id"])] == pooled.version
