"""Snapshot tests: every builder through the renderers, compared with committed files.

Renderers are pure, so any change in the JSON a platform receives shows up here as a diff that a
reviewer can read. To accept an intended change, delete the snapshot and rerun with
UPDATE_SNAPSHOTS=1.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

import pytest

from bot.cards import (
    Card,
    build_claimed_card,
    build_duplicate_card,
    build_escalation_card,
    build_friend_match_card,
    build_lead_card,
    build_notice_card,
    build_pool_card,
    build_reassigned_card,
    build_reminder_card,
    build_rollup_card,
    render_dingtalk_actioncard,
    render_dingtalk_callback_reply,
    render_dingtalk_card,
    render_dingtalk_robot_actioncard,
    render_dingtalk_robot_markdown,
    render_text,
    render_wecom,
    render_wecom_markdown,
    render_wecom_textcard,
    render_wecom_update,
    t,
)
from tests.cards.samples import LINK, NOW, duplicate_view, friend_view, lead_view, rollup_items

LEAD_BUTTONS = {"claim": "claim:tokC", "pass": "pass:tokP", "snooze": "snooze:tokS"}


def _cards() -> dict[str, Callable[[], Card]]:
    return {
        "lead_zh": lambda: build_lead_card(lead_view(), now=NOW, buttons=LEAD_BUTTONS, link=LINK,
                                           card_ref="lead-1024-wangxm-1"),
        "lead_en": lambda: build_lead_card(lead_view(), now=NOW, lang="en", buttons=LEAD_BUTTONS,
                                           link=LINK, card_ref="lead-1024-wangxm-1"),
        "lead_overdue_minimal": lambda: build_lead_card(
            lead_view(amount=None, region="", campaign="", duplicate_of=None, silent_flag=False,
                      earlier_leads=0, activities=0, stage="",
                      sla_due_at=NOW - timedelta(minutes=75)),
            now=NOW, buttons={"claim": "claim:tokC"}, link=LINK, card_ref="lead-1024-u2-1"),
        "claimed_other": lambda: build_claimed_card(
            lead_view(), claimer_name="张三", now=NOW, link=LINK, card_ref="lead-1024-lisi-1"),
        "claimed_self": lambda: build_claimed_card(
            lead_view(), claimer_name="张三", now=NOW, claimed_by_viewer=True,
            buttons={"advance": "advance:tokA", "undo": "undo:tokU"}, link=LINK,
            card_ref="lead-1024-zhangsan-1"),
        "pool": lambda: build_pool_card(
            lead_view(silent_flag=False), now=NOW, buttons={"claim": "claim:tokPool"}, link=LINK,
            card_ref="pool-1024-1"),
        "duplicate": lambda: build_duplicate_card(
            duplicate_view(), buttons={"merge": "merge:tokM", "distinct": "distinct:tokD"},
            link=LINK, card_ref="dup-501-88-1"),
        "reminder": lambda: build_reminder_card(
            lead_view(duplicate_of=None, silent_flag=False), now=NOW,
            buttons={"snooze": "snooze:tokS", "pass": "pass:tokP"}, link=LINK,
            card_ref="remind-1024-1"),
        "escalation": lambda: build_escalation_card(
            lead_view(owner_name="张三", sla_due_at=NOW - timedelta(minutes=25), silent_flag=False,
                      duplicate_of=None),
            now=NOW, level=2, buttons={"reassign": "reassign:tokR"}, link=LINK,
            card_ref="esc-1024-2"),
        "reassigned": lambda: build_reassigned_card(
            lead_view(duplicate_of=None, silent_flag=False), from_name="张三", to_name="李四",
            reason="超时未跟进", now=NOW, buttons={"claim": "claim:tokC"}, link=LINK,
            card_ref="reassign-1024-1"),
        "rollup": lambda: build_rollup_card(rollup_items(), 12, link=LINK, card_ref="rollup-u1-7"),
        "friend_match": lambda: build_friend_match_card(friend_view(), now=NOW, link=LINK),
        "help_en": lambda: build_notice_card(t("help.title", "en"), t("help.body", "en"),
                                             lang="en"),
    }


CARDS = _cards()
RENDERERS: dict[str, Callable[[Card], Any]] = {
    "wecom": lambda c: render_wecom(c, agent_id=1000002),
    "dingtalk": lambda c: (render_dingtalk_card(c, {"dt_u1": c.buttons}) if c.card_ref
                           else render_dingtalk_actioncard(c)),
    "text": render_text,
}


@pytest.mark.parametrize("renderer", sorted(RENDERERS))
@pytest.mark.parametrize("card_name", sorted(CARDS))
def test_every_card_on_every_main_renderer(snapshot, card_name: str, renderer: str) -> None:
    snapshot(f"{card_name}.{renderer}", RENDERERS[renderer](CARDS[card_name]()))


EXTRA: dict[str, Callable[[], Any]] = {
    "lead_zh.wecom_textcard": lambda: render_wecom_textcard(CARDS["lead_zh"](), agent_id=1000002),
    "lead_zh.wecom_markdown": lambda: render_wecom_markdown(CARDS["lead_zh"]()),
    "escalation.wecom_markdown": lambda: render_wecom_markdown(CARDS["escalation"]()),
    "claimed_other.wecom_update": lambda: render_wecom_update(
        CARDS["claimed_other"](), agent_id=1000002, response_code="RC123"),
    "claimed_self.wecom_update": lambda: render_wecom_update(CARDS["claimed_self"]()),
    "lead_zh.dingtalk_actioncard": lambda: render_dingtalk_actioncard(CARDS["lead_zh"]()),
    "lead_zh.dingtalk_robot_actioncard": lambda: render_dingtalk_robot_actioncard(
        CARDS["lead_zh"]()),
    "escalation.dingtalk_robot_markdown": lambda: render_dingtalk_robot_markdown(
        CARDS["escalation"]()),
    "claimed.dingtalk_callback_reply": lambda: render_dingtalk_callback_reply(
        CARDS["claimed_other"](), CARDS["claimed_self"]()),
    "claimed.dingtalk_update_per_user": lambda: render_dingtalk_card(
        CARDS["claimed_other"](), {"dt_zhangsan": CARDS["claimed_self"](), "dt_lisi": ()}),
    "lead_zh.dingtalk_shared": lambda: render_dingtalk_card(CARDS["lead_zh"]()),
}


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_other_platform_shapes(snapshot, name: str) -> None:
    snapshot(name, EXTRA[name]())
