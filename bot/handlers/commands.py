"""Text commands to the app (WeCom) or robot (DingTalk): 帮助/help, 我的线索, 文本模式/卡片模式,
为什么是我/why, and anything else as a search by customer name or phone."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from leadbot.i18n import t
from bot.handlers.duty import answer_duty
from bot.events import RobotQuotaExhausted, TextCommand
from bot.handlers import handles
from bot.platforms.dingtalk.messages import robot_text
from store.outbox import NewOutboxItem
from notifications.quiet_hours import REPLY
from leadbot.masking import mask_phone

if TYPE_CHECKING:
    from bot.context import AppContext
    from store import dto

MAX_LISTED = 10


def _is(text: str, key: str) -> bool:
    low = text.strip().lower()
    return low in (t(key, "zh").lower(), t(key, "en").lower())


async def reply(ctx: "AppContext", event: TextCommand, text: str) -> None:
    """DingTalk robot messages are answered in their conversation (sessionWebhook while valid,
    else the robot API); everything else goes to the sender through the durable outbox."""
    dingtalk = ctx.services.dingtalk_client
    if event.platform == "dingtalk" and dingtalk is not None and (event.reply_webhook or event.is_group):
        await dingtalk.reply(event, text)  # a failure raises: the inbox retries the event
        return
    outbox = ctx.services.outbox
    if outbox is None:
        return
    ref = event.message_id or hashlib.sha256(f"{event.sender_id}|{event.occurred_at.isoformat()}|{event.text}"
                                             .encode()).hexdigest()[:24]
    await outbox.enqueue(NewOutboxItem(key=f"cmd:{event.platform}:{ref}", channel=event.platform, kind="text",
                                       recipient=event.sender_id, payload={"text": text, REPLY: True}, urgent=True))
    worker = ctx.services.delivery_worker
    if worker is not None:
        worker.wake()


def _line(lead: "dto.Lead", lang: str) -> str:
    # "线索 #12", never a bare "#12": customers have numbers too (客户 #5 on friend cards).
    who = " · ".join(x for x in (lead.name, lead.company, mask_phone(lead.phone) if lead.phone else "",
                                 lead.stage) if x) or t("customer.unnamed", lang)
    return t("list.lead_line", lang, lead_id=lead.id, who=who)


async def answer_command(ctx: "AppContext", event: TextCommand) -> str:
    lang = ctx.lang
    text = event.text.strip()
    rep = await ctx.store.rep_by_platform_id(event.platform, event.sender_id)
    if rep is None:
        return t("error.not_allowed", lang)
    if not text or _is(text, "cmd.help") or text in ("?", "？"):
        return f"{t('help.title', lang)}\n{t('help.body', lang)}"
    if _is(text, "cmd.text_mode") or _is(text, "cmd.card_mode"):
        profile = "text" if _is(text, "cmd.text_mode") else "card"
        await ctx.services.outbox.set_delivery(rep.id, profile)
        await ctx.store.audit(f"rep:{rep.id}", "rep.delivery_changed", "rep", str(rep.id), {"delivery": profile})
        return t("mode.text_on" if profile == "text" else "mode.card_on", lang)
    if _is(text, "cmd.my_leads"):
        leads = [lead for lead in await ctx.store.list_leads(owner_id=rep.id, limit=50)
                 if lead.status in ("assigned", "claimed")]
        if not leads:
            return t("my_leads.empty", lang)
        lines = [_line(lead, lang) for lead in leads[:MAX_LISTED]]
        return "\n".join([t("my_leads.title", lang, n=len(leads)), *lines])
    first, _, rest = text.partition(" ")
    if _is(first, "cmd.duty"):
        return await answer_duty(ctx, rep, rest.split(), lang)
    if _is(text, "cmd.why"):
        explain = ctx.services.explain_for_rep
        if explain is None:
            return t("why.none", lang)
        return await explain(rep, lang)
    digits = re.sub(r"\D", "", text)
    if len(text) < 2 and len(digits) < 4:
        return t("search.too_short", lang)
    found = await ctx.store.search_leads(text, limit=MAX_LISTED)
    if not found:
        return t("search.none", lang, query=text[:20])
    return "\n".join([t("search.title", lang, query=text[:20], n=len(found)), *(_line(lead, lang) for lead in found)])


@handles(TextCommand)
async def handle_text_command(event: TextCommand, ctx: "AppContext") -> None:
    await reply(ctx, event, await answer_command(ctx, event))


@handles(RobotQuotaExhausted)
async def handle_robot_quota_exhausted(event: RobotQuotaExhausted, ctx: "AppContext") -> None:
    """conformance D13 (dt/develop-stream-mode-push-server): the organisation's call quota is used
    up and the message came without its text. Logged as such for the operator; the sender is
    answered through the conversation's sessionWebhook while it is valid (it needs no quota-
    counted API call), never through the robot API, which the quota also stops."""
    ctx.log.warning("dingtalk.robot_quota_exhausted", err_code=event.error_code, err_msg=event.error_message[:200])
    client = ctx.services.dingtalk_client
    expired = event.reply_webhook_expires_at is not None and event.reply_webhook_expires_at <= ctx.clock.now()
    if client is None or not event.reply_webhook or expired:
        return
    try:
        await client.send_session_webhook(event.reply_webhook, robot_text(t("robot.quota_exhausted", ctx.lang)))
    except Exception as e:  # the quota may stop this too: the log line above is what is left
        ctx.log.warning("dingtalk.robot_quota_reply_failed", error=type(e).__name__)
