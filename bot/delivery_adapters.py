"""The notifications.Sender over the concrete WeCom and DingTalk clients (bot/app.py wires it).

Payload contract of an outbox row (what a producer puts in ``payload``):
- ``text``: the plain text of the message (every lead message has one: the text form, the
  lock-screen-friendly fallback and the digest all use it);
- ``wecom_card``: a rendered WeCom template_card (bot.cards.render_wecom_template_card);
- ``dingtalk_card``: ``{"card_data": {...}, "private_data": {...}?, "template_id": ""?}``
  (bot.cards.render_dingtalk_card);
- card_update rows: WeCom ``{"response_code", "replace_name" | "wecom_card"}``, DingTalk
  ``{"out_track_id", "card_data", "private_data"?}``;
- remark rows (WeCom): ``{"userid", "external_userid", "remark"?, "remark_company"?}``, the CRM
  name written back onto a friend (externalcontact/remark);
- robot rows: ``text`` or ``markdown`` (+ ``title``, ``mentions``); the recipient is the WeCom
  robot key or the DingTalk custom-robot webhook.
A card row without a card body for its channel answers ``card_unsupported``, so the worker sends
the text copy instead (that is also how the other-platform fallback degrades gracefully).

Idempotency: ``task_id`` / ``outTrackId`` = ``message.dedupe_id``; WeCom text goes with
``enable_duplicate_check`` (4 h); DingTalk work notices carry ``short_ref`` of the key.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from bot.platforms.dingtalk.client import DingTalkClient
from bot.platforms.dingtalk.errors import DingTalkError, ThrottleError
from bot.platforms.dingtalk.messages import short_ref
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.errors import ALL_USERS_INVALID, ErrorKind, WeComError
from notifications.sender import DeliveryResult, OutboundMessage

DUPLICATE_CHECK_SECONDS = 4 * 3600  # WeCom's maximum


def _wecom_failure(e: WeComError, msg: OutboundMessage) -> DeliveryResult:
    kind = e.kind
    if kind is ErrorKind.THROTTLE:
        return DeliveryResult.failed("throttle", str(e))
    if kind in (ErrorKind.TOKEN, ErrorKind.TRANSIENT):
        return DeliveryResult.failed("retry", str(e))
    if e.errcode == ALL_USERS_INVALID:
        return DeliveryResult.failed("invalid_user", str(e))
    if msg.redelivery and msg.form == "card" and "task_id" in (e.errmsg or "").lower():
        # The task_id is ours and unique per message: WeCom refusing it on a redelivery means
        # the first attempt arrived before the crash.
        return DeliveryResult.sent(task_id=msg.dedupe_id, duplicate=True)
    return DeliveryResult.failed("permanent", str(e))


def _dingtalk_failure(e: DingTalkError) -> DeliveryResult:
    if isinstance(e, ThrottleError):
        return DeliveryResult.failed("throttle", str(e), retry_after=e.retry_after)
    if e.retryable:
        return DeliveryResult.failed("retry", str(e))
    return DeliveryResult.failed("permanent", str(e))


class PlatformSender:
    """Routes each OutboundMessage to the client of its channel. A channel whose platform is
    not configured answers ``permanent`` (the worker then tries the rep's other platform)."""

    def __init__(self, wecom: WeComClient | None = None, dingtalk: DingTalkClient | None = None, *,
                 robot_secret_for: Callable[[str], str] | None = None) -> None:
        self.wecom = wecom
        self.dingtalk = dingtalk
        self.robot_secret_for = robot_secret_for

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        try:
            if message.channel in ("wecom", "wecom_robot"):
                if self.wecom is None:
                    return DeliveryResult.failed("permanent", "WeCom is not configured")
                return await self._wecom(message)
            if message.channel in ("dingtalk", "dingtalk_robot"):
                if self.dingtalk is None:
                    return DeliveryResult.failed("permanent", "DingTalk is not configured")
                return await self._dingtalk(message)
            return DeliveryResult.failed("permanent", f"unknown channel {message.channel!r}")
        except WeComError as e:
            return _wecom_failure(e, message)
        except DingTalkError as e:
            return _dingtalk_failure(e)
        except ValueError as e:  # a body the client refuses before sending (no template, bad card)
            kind = "card_unsupported" if message.form == "card" else "permanent"
            return DeliveryResult.failed(kind, str(e))

    # ---- WeCom -------------------------------------------------------------------------------

    async def _wecom(self, m: OutboundMessage) -> DeliveryResult:
        assert self.wecom is not None
        p: Mapping[str, Any] = m.payload
        if m.channel == "wecom_robot":
            if p.get("image_base64"):
                import base64

                await self.wecom.webhook_send(m.recipient, image=base64.b64decode(str(p["image_base64"])))
            elif p.get("markdown"):
                await self.wecom.webhook_send(m.recipient, markdown=str(p["markdown"]),
                                              mentioned_list=p.get("mentions") or ())
            else:
                await self.wecom.webhook_send(m.recipient, text=m.text or str(p.get("text", "")),
                                              mentioned_list=p.get("mentions") or ())
            return DeliveryResult.sent()
        if m.form == "remark":
            # Not a message: the CRM name written back as the friend's remark (payload: userid,
            # external_userid, remark, remark_company). Setting it twice is harmless.
            await self.wecom.remark(str(p["userid"]), str(p["external_userid"]), remark=p.get("remark"),
                                    remark_company=p.get("remark_company"))
            return DeliveryResult.sent()
        if m.form == "card_update":
            await self.wecom.update_template_card(str(p["response_code"]), userids=[m.recipient],
                                                  replace_name=p.get("replace_name"),
                                                  template_card=p.get("wecom_card"))
            return DeliveryResult.sent()
        if m.form == "card":
            card = p.get("wecom_card")
            if not isinstance(card, Mapping):
                return DeliveryResult.failed("card_unsupported", "no WeCom card body in the payload")
            result = await self.wecom.send_template_card(m.recipient, {**card, "task_id": m.dedupe_id},
                                                         enable_duplicate_check=True,
                                                         duplicate_check_interval=DUPLICATE_CHECK_SECONDS)
        else:
            result = await self.wecom.send_text(m.recipient, m.text or str(p.get("text", "")),
                                                enable_duplicate_check=True,
                                                duplicate_check_interval=DUPLICATE_CHECK_SECONDS)
        if m.recipient in result.invalid_users or m.recipient in result.unlicensed_users:
            return DeliveryResult.failed("invalid_user", f"WeCom lists {m.recipient} as invalid")
        ids: dict[str, Any] = {"msgid": result.msgid}
        if m.form == "card":
            ids.update(task_id=m.dedupe_id, response_code=result.response_code)
        return DeliveryResult.sent(**ids)

    # ---- DingTalk ----------------------------------------------------------------------------

    async def _dingtalk(self, m: OutboundMessage) -> DeliveryResult:
        assert self.dingtalk is not None
        p: Mapping[str, Any] = m.payload
        if m.channel == "dingtalk_robot":
            secret = self.robot_secret_for(m.recipient) if self.robot_secret_for else None
            hook = m.recipient or None
            if p.get("markdown"):
                await self.dingtalk.send_custom_robot_markdown(str(p.get("title") or "leadbot"), str(p["markdown"]),
                                                               at_user_ids=p.get("mentions") or (),
                                                               webhook=hook, secret=secret)
            else:
                await self.dingtalk.send_custom_robot_text(m.text or str(p.get("text", "")),
                                                           at_user_ids=p.get("mentions") or (),
                                                           webhook=hook, secret=secret)
            return DeliveryResult.sent()
        if m.form == "card_update":
            await self.dingtalk.update_card(str(p["out_track_id"]), card_data=p.get("card_data"),
                                            private_data=p.get("private_data"))
            return DeliveryResult.sent()
        if m.form == "card":
            card = p.get("dingtalk_card")
            if not isinstance(card, Mapping):
                return DeliveryResult.failed("card_unsupported", "no DingTalk card body in the payload")
            delivery = await self.dingtalk.create_and_deliver_card(
                m.dedupe_id, card_data=card.get("card_data") or {}, user_ids=[m.recipient],
                private_data=card.get("private_data"), template_id=str(card.get("template_id") or ""))
            if not delivery.ok:
                errors = "; ".join(r.error for r in delivery.failed) or "no deliver result"
                return DeliveryResult.failed("card_unsupported", f"card not delivered: {errors}")
            return DeliveryResult.sent(outTrackId=delivery.out_track_id)
        result = await self.dingtalk.send_work_text(m.recipient, m.text or str(p.get("text", "")),
                                                    ref=short_ref(m.key))
        return DeliveryResult.sent(task_id=result.task_id, request_id=result.request_id)
