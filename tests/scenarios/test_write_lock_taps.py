"""Card taps answered while another connection holds SQLite's write lock (issue 18 #8): no row
could be written in time, so the answer carries no card; once the lock is gone the taps are
handled from the spill journal and the tapped copies are redrawn as late answers are."""

from __future__ import annotations

import pytest

from tests.conftest import AUTH, PG_URL
from tests.faults.test_write_lock_acks import DINGTALK_DEADLINE, WECOM_DEADLINE, WriteLock, timed
from tests.scenarios.conftest import Phones

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="SQLite's database-wide write lock")


async def test_a_tap_deferred_under_the_lock_still_redraws_its_card(phones: Phones) -> None:
    """WeCom and DingTalk taps answered without a card (no row could be written in time) are
    handled once the lock is gone, and the tapped copies show the claim (WeCom with the tap's
    own code, DingTalk through the update API)."""
    leads = []
    for name in ("孙悦", "周密"):
        leads.append(await (await phones.cli.post("/api/v1/leads", json={"name": name, "channel": "expo"},
                                                  headers=AUTH)).json())
    await phones.settle()
    (wecom_card,) = phones.cards("wangfang", leads[0]["id"])
    (dingtalk_card,) = phones.cards("chenjing", leads[1]["id"])
    with WriteLock(phones.ctx.engine.url.database):
        took, tapped = await timed(phones.tap("wangfang", wecom_card["ref"], wecom_card["keys"]["claim"]))
        assert tapped.status == 200 and not tapped.reply and took < WECOM_DEADLINE / 2
        took, tapped = await timed(phones.tap("chenjing", dingtalk_card["ref"], dingtalk_card["keys"]["claim"]))
        assert tapped.status == 200 and tapped.body == {} and took < DINGTALK_DEADLINE
    await phones.settle()
    (mine,) = phones.cards("wangfang", leads[0]["id"])
    assert "你已认领" in mine["text"] and mine["actions"] == ["advance"], mine
    (mine,) = phones.cards("chenjing", leads[1]["id"])
    assert "你已认领" in mine["text"] and mine["actions"] == ["advance"], mine
    assert await phones.dead_rows() == {}
