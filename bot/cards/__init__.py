"""Cards: the neutral Card model, builders (views -> Card) and renderers (Card -> platform JSON
or text). Standard library only, no I/O and no clock: callers pass ``now``.

Typical use::

    card = build_lead_card(view, now=clock.now(), lang="zh",
                           buttons={"claim": "claim:<token>", "pass": "pass:<token>"},
                           link="https://crm.example.com/a/<token>",
                           card_ref=make_card_ref("lead", view.lead_id, rep_userid, attempt))
    body = render_wecom(card, agent_id=1000002)        # + touser, then message/send
    text = render_text(card)                            # text-mode fallback
"""

from bot.cards.builders import (
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
    make_buttons,
)
from leadbot.i18n import LANGUAGES, normalize_lang, t
from bot.cards.model import ACTIONS, CARD_STATES, Button, Card, Field, make_card_ref
from bot.cards.render_dingtalk import (
    render_dingtalk_actioncard,
    render_dingtalk_callback_reply,
    render_dingtalk_card,
    render_dingtalk_markdown_msg,
    render_dingtalk_robot_actioncard,
    render_dingtalk_robot_markdown,
    render_dingtalk_text,
    render_dingtalk_webhook_markdown,
)
from bot.cards.render_text import render_text
from bot.cards.render_wecom import (
    render_wecom,
    render_wecom_markdown,
    render_wecom_template_card,
    render_wecom_text,
    render_wecom_textcard,
    render_wecom_update,
)
from bot.cards.views import (
    CustomerBrief,
    DuplicateCardView,
    DuplicateRef,
    FriendMatchView,
    LeadCardView,
    RollupItem,
)

__all__ = [
    "ACTIONS", "CARD_STATES", "LANGUAGES", "Button", "Card", "CustomerBrief",
    "DuplicateCardView", "DuplicateRef", "Field", "FriendMatchView", "LeadCardView",
    "RollupItem", "build_claimed_card", "build_duplicate_card", "build_escalation_card",
    "build_friend_match_card", "build_lead_card", "build_notice_card", "build_pool_card",
    "build_reassigned_card", "build_reminder_card", "build_rollup_card", "make_buttons",
    "make_card_ref", "normalize_lang", "render_dingtalk_actioncard",
    "render_dingtalk_callback_reply", "render_dingtalk_card", "render_dingtalk_markdown_msg",
    "render_dingtalk_robot_actioncard", "render_dingtalk_robot_markdown", "render_dingtalk_text",
    "render_dingtalk_webhook_markdown", "render_text", "render_wecom", "render_wecom_markdown",
    "render_wecom_template_card", "render_wecom_text", "render_wecom_textcard",
    "render_wecom_update", "t",
]
