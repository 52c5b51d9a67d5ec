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

Idempotency: ``task_id`` / ``outTrackId`` / custom robot ``msgUuid`` = ``message.dedupe_id``
(namespaced per deployment, conformance W6); WeCom text goes with ``enable_duplicate_check``
(4 h); DingTalk work notices carry ``short_ref`` of the key.

Each failure is classified once, here, into what the worker does: retry, a throttle with how long
and what it holds back (this message, this recipient/robot, the whole app), a text copy, another
route, or a permanent failure. The rule behind each is named by its conformance.md row.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from bot.platforms.dingtalk.client import DingTalkClient
from bot.platforms.dingtalk.errors import DingTalkError, ThrottleError
from leadbot.i18n import t
from bot.platforms.dingtalk.messages import sample_markdown, sample_text, short_ref
from bot.platforms.wecom.client import WeComClient
from bot.platforms.wecom.errors import ALL_USERS_INVALID, ErrorKind, WeComError
from notifications.sender import DeliveryResult, OutboundMessage

DUPLICATE_CHECK_SECONDS = 4 * 3600  # WeCom's maximum
WECOM_FREQ_LIMIT = 45009
# WeCom names no wait for 45009; its limits are per minute (reference/wecom.md §5).
WECOM_THROTTLE_SECONDS = 60.0
# DingTalk work-notice refusals reported by getsendresult's forbidden_list
# (dt/gets-the-result-of-sending-messages-asynchronously-to-the-enterprise):
SAME_CONTENT_TODAY = "143106"  # the same content reached this user today already
# Robot one-to-one sends that DingTalk flow-controlled wait this long (no wait is documented;
# the robot's limits are per minute).
ROBOT_FLOW_CONTROL_SECONDS = 60.0
# getsendresult is asynchronous: a user it does not list yet is asked about again this often.
WORK_NOTICE_CONFIRM_TRIES = 3


def _wecom_failure(e: WeComError, msg: OutboundMessage) -> DeliveryResult:
    # conformance W5 (WeCom global error codes): decide on errcode only, never on errmsg.
    kind = e.kind
    if kind is ErrorKind.THROTTLE:
        if e.errcode == WECOM_FREQ_LIMIT:
            # A group robot's 20 a minute is that robot's; an app's call limit is the app's.
            scope = "recipient" if msg.channel == "wecom_robot" else "app"
            return DeliveryResult.failed("throttle", str(e), retry_after=WECOM_THROTTLE_SECONDS, scope=scope)
        return DeliveryResult.failed("throttle", str(e))
    if kind in (ErrorKind.TOKEN, ErrorKind.TRANSIENT):
        return DeliveryResult.failed("retry", str(e))
    if e.errcode == ALL_USERS_INVALID:
        return DeliveryResult.failed("invalid_user", str(e))
    if msg.redelivery and msg.form == "card":
        # The first attempt may have arrived before the crash, and WeCom's refusal of a task_id
        # it has seen carries no code of its own: the text copy makes sure the rep has it.
        return DeliveryResult.failed("text_copy", str(e))
    return DeliveryResult.failed("permanent", str(e))


def _dingtalk_failure(e: DingTalkError) -> DeliveryResult:
    if isinstance(e, ThrottleError):
        return DeliveryResult.failed("throttle", str(e), retry_after=e.retry_after, scope=e.scope)
    if e.retryable:
        return DeliveryResult.failed("retry", str(e))
    return DeliveryResult.failed("permanent", str(e))


class PlatformSender:
    """Routes each OutboundMessage to the client of its channel. A channel whose platform is
    not configured answers ``permanent`` (the worker then tries the rep's other platform)."""

    def __init__(self, wecom: WeComClient | None = None, dingtalk: DingTalkClient | None = None, *,
                 robot_secret_for: Callable[[str], str] | None = None, lang: str = "zh") -> None:
        self.lang = lang  # of the words around a message (the DingTalk work-notice ref tag)
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
            # conformance D5: one msgUuid per outbox row, so a retry after a timeout posts once.
            if p.get("markdown"):
                await self.dingtalk.send_custom_robot_markdown(str(p.get("title") or "leadbot"), str(p["markdown"]),
                                                               at_user_ids=p.get("mentions") or (),
                                                               webhook=hook, secret=secret, msg_uuid=m.dedupe_id)
            else:
                await self.dingtalk.send_custom_robot_text(m.text or str(p.get("text", "")),
                                                           at_user_ids=p.get("mentions") or (),
                                                           webhook=hook, secret=secret, msg_uuid=m.dedupe_id)
            return DeliveryResult.sent(msgUuid=m.dedupe_id)
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
        if p.get("via") == "robot":
            return await self._robot_text(m)
        result = await self.dingtalk.send_work_text(m.recipient, m.text or str(p.get("text", "")),
                                                    ref=t("ref.tag", self.lang, ref=short_ref(m.key)))
        return await self._confirm_work_notice(m, result.task_id, result.request_id)

    async def _confirm_work_notice(self, m: OutboundMessage, task_id: str, request_id: str) -> DeliveryResult:
        """conformance D3 (dt/asynchronous-sending-of-enterprise-session-messages,
        dt/gets-the-result-of-sending-messages-asynchronously-to-the-enterprise): asyncsend_v2
        answers success even for a user who will never see the message; only getsendresult
        tells. A rep listed invalid, forbidden or failed is "unreached" (the worker sends it
        another way); the same content already delivered today (143106, a redelivery: each
        row's text carries its own ref) counts as delivered."""
        assert self.dingtalk is not None
        ids = {"task_id": task_id, "request_id": request_id}
        for attempt in range(WORK_NOTICE_CONFIRM_TRIES):
            result = await self.dingtalk.get_work_notice_result(task_id)
            forbidden = {str(f.get("userid")): str(f.get("code")) for f in result.get("forbidden_list") or []
                         if isinstance(f, Mapping)}
            if m.recipient in (result.get("invalid_user_id_list") or []):
                return DeliveryResult.failed("unreached", f"work notice: {m.recipient} is invalid (getsendresult)")
            if m.recipient in (result.get("forbidden_user_id_list") or []) or m.recipient in forbidden:
                code = forbidden.get(m.recipient, "")
                if code == SAME_CONTENT_TODAY:
                    return DeliveryResult.sent(**ids, duplicate=True)
                return DeliveryResult.failed("unreached", f"work notice to {m.recipient} forbidden ({code or 'limit'})")
            if m.recipient in (result.get("failed_user_id_list") or []):
                return DeliveryResult.failed("unreached", f"work notice to {m.recipient} failed (getsendresult)")
            if any(m.recipient in (result.get(k) or []) for k in ("read_user_id_list", "unread_user_id_list")):
                return DeliveryResult.sent(**ids, confirmed=True)
            await self.dingtalk.sleep(0.5 * (2 ** attempt))
        # Not listed yet: DingTalk is still working on it. Counted as sent (nothing is known
        # against it), and the row says it was not confirmed.
        return DeliveryResult.sent(**ids, confirmed=False)

    async def _robot_text(self, m: OutboundMessage) -> DeliveryResult:
        """The app robot's one-to-one text (batchSend), the way round a work notice that did not
        reach. conformance D7 (dt/chatbots-send-one-on-one-chat-messages-in-batches): a user in
        flowControlledStaffIdList was not sent to (throttled: retried), one in
        invalidStaffIdList cannot be (reported: the worker tries the other platform)."""
        assert self.dingtalk is not None
        p = m.payload
        if p.get("markdown"):
            key, param = sample_markdown(str(p.get("title") or "leadbot"), str(p["markdown"]))
        else:
            key, param = sample_text(m.text or str(p.get("text", "")))
        result = await self.dingtalk.robot_batch_send([m.recipient], key, param)
        if m.recipient in result.flow_controlled_staff_ids:
            return DeliveryResult.failed("throttle", f"robot flow-controlled {m.recipient}",
                                         retry_after=ROBOT_FLOW_CONTROL_SECONDS, scope="recipient")
        if m.recipient in result.invalid_staff_ids:
            return DeliveryResult.failed("invalid_user", f"robot: {m.recipient} is invalid")
        return DeliveryResult.sent(processQueryKey=result.process_query_key)
