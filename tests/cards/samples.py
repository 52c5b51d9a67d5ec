"""Sample views shared by the card tests: one realistic lead, duplicate, friend and digest."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from bot.cards.views import (
    CustomerBrief,
    DuplicateCardView,
    DuplicateRef,
    FriendMatchView,
    LeadCardView,
    RollupItem,
)

SHANGHAI = timezone(timedelta(hours=8))
NOW = datetime(2025, 3, 10, 10, 0, tzinfo=SHANGHAI)
LINK = "https://crm.example.com/a/Zk3xQ"


def lead_view(**overrides: Any) -> LeadCardView:
    base: dict[str, Any] = dict(
        lead_id=1024,
        customer_name="王小明",
        company="华为",
        phone="13812345678",
        source_channel="web_form",
        campaign="2025春季活动",
        region="华东",
        amount=12000,
        earlier_leads=2,
        activities=5,
        duplicate_of=DuplicateRef(name="王晓明", customer_id=88),
        sla_due_at=NOW + timedelta(minutes=2, seconds=30),
        owner_name="",
        stage="线索验证",
        silent_flag=True,
        state="open",
    )
    base.update(overrides)
    return LeadCardView(**base)


def duplicate_view() -> DuplicateCardView:
    return DuplicateCardView(
        incoming=CustomerBrief(customer_id=501, name="王小明", company="华为", phone="13812345678"),
        existing=CustomerBrief(customer_id=88, name="王晓明", company="华为技术有限公司",
                               phone="+86 138-1234-5678", owner_name="李娜"),
        reasons=("phone", "name_company"),
        score=0.92,
    )


def friend_view(**overrides: Any) -> FriendMatchView:
    base: dict[str, Any] = dict(
        customer_id=88, customer_name="王晓明", company="华为技术有限公司", phone="13812345678",
        contact_name="小明🌟", owner_name="李娜", owned_by_viewer=False, stage="方案共创",
        last_activity_at=NOW - timedelta(days=3, hours=2), open_leads=1, match_reason="phone")
    base.update(overrides)
    return FriendMatchView(**base)


def rollup_items() -> list[RollupItem]:
    names = ["王小明", "李雷", "韩梅梅", "张伟", "刘洋", "陈静", "赵磊"]
    return [RollupItem(customer_name=n, company=f"公司{i}", source_channel="ads", lead_id=i)
            for i, n in enumerate(names, start=1)]
