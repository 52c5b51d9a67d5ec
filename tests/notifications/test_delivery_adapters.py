from __future__ import annotations

from typing import Any

from bot.platforms.delivery import PlatformSender
from bot.platforms.dingtalk.client import CardDelivery, DeliverResult, WorkNoticeResult
from bot.platforms.dingtalk.errors import ThrottleError
from bot.platforms.wecom.client import SendResult
from bot.platforms.wecom.errors import WeComError
from notifications.sender import OutboundMessage, dedupe_id


def msg(channel: str, form: str, payload: dict[str, Any], *, recipient: str = "u1", redelivery: bool = False,
        text: str = "") -> OutboundMessage:
    key = f"lead:1:offer:{recipient}"
    return OutboundMessage(key=key, dedupe_id=dedupe_id(key), channel=channel, kind="card", form=form,
                           recipient=recipient, payload=payload, text=text, redelivery=redelivery)


class StubWeCom:
    def __init__(self, error: WeComError | None = None, invalid: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[str, Any, dict]] = []
        self.error = error
        self.invalid = invalid

    async def send_template_card(self, touser: str, card: Any, **options: Any) -> SendResult:
        self.calls.append(("card", card, options))
        if self.error:
            raise self.error
        return SendResult(msgid="m1", response_code="rc1", invalid_users=self.invalid)

    async def send_text(self, touser: str, content: str, **options: Any) -> SendResult:
        self.calls.append(("text", content, options))
        return SendResult(msgid="m2", response_code="")


class StubDingTalk:
    def __init__(self, ok: bool = True, error: Exception | None = None) -> None:
        self.ok, self.error, self.calls = ok, error, []

    async def create_and_deliver_card(self, out_track_id: str, **kw: Any) -> CardDelivery:
        self.calls.append(("card", out_track_id, kw))
        if self.error:
            raise self.error
        return CardDelivery(out_track_id, (DeliverResult("IM_ROBOT", kw["user_ids"][0], self.ok, "" if self.ok else "unsupported"),))

    async def send_work_text(self, user: str, content: str, *, ref: str = "") -> WorkNoticeResult:
        self.calls.append(("text", content, {"ref": ref}))
        self.last_user = user
        return WorkNoticeResult(task_id="t1", request_id="r1")

    async def get_work_notice_result(self, task_id: str) -> dict[str, Any]:
        return {"unread_user_id_list": [self.last_user]}

    async def sleep(self, _: float) -> None:
        return None


async def test_wecom_card_uses_the_dedupe_id_as_task_id_and_duplicate_check() -> None:
    wecom = StubWeCom()
    m = msg("wecom", "card", {"wecom_card": {"card_type": "button_interaction"}})
    result = await PlatformSender(wecom=wecom).send(m)  # type: ignore[arg-type]
    assert result.ok and result.platform_ids == {"msgid": "m1", "task_id": m.dedupe_id, "response_code": "rc1"}
    _, card, options = wecom.calls[0]
    assert card["task_id"] == m.dedupe_id and options["enable_duplicate_check"]


async def test_wecom_error_mapping() -> None:
    cases = [(WeComError(45009, "freq"), "throttle"), (WeComError(42001, "expired"), "retry"),
             (WeComError(None, "timeout"), "retry"), (WeComError(81013, "all invalid"), "invalid_user"),
             (WeComError(40003, "bad user"), "permanent")]
    for error, kind in cases:
        result = await PlatformSender(wecom=StubWeCom(error)).send(  # type: ignore[arg-type]
            msg("wecom", "card", {"wecom_card": {}}))
        assert result.error_kind == kind, error
    invalid = await PlatformSender(wecom=StubWeCom(invalid=("u1",))).send(  # type: ignore[arg-type]
        msg("wecom", "card", {"wecom_card": {}}))
    assert invalid.error_kind == "invalid_user"
    # conformance W5: errcode only. A redelivered card refused with a code that does not say
    # "already delivered" gets the text copy; an errmsg that mentions task_id changes nothing.
    for errmsg in ("task_id exist", "invalid parameter"):
        dup = await PlatformSender(wecom=StubWeCom(WeComError(40058, errmsg))).send(  # type: ignore[arg-type]
            msg("wecom", "card", {"wecom_card": {}}, redelivery=True))
        assert dup.error_kind == "text_copy"
    first = await PlatformSender(wecom=StubWeCom(WeComError(40058, "task_id exist"))).send(  # type: ignore[arg-type]
        msg("wecom", "card", {"wecom_card": {}}))
    assert first.error_kind == "permanent"


async def test_missing_card_body_or_platform() -> None:
    sender = PlatformSender(wecom=StubWeCom())  # type: ignore[arg-type]
    assert (await sender.send(msg("wecom", "card", {}))).error_kind == "card_unsupported"
    assert (await sender.send(msg("dingtalk", "card", {}))).error_kind == "permanent"
    text = await sender.send(msg("wecom", "text", {"text": "x"}, text="新线索\n点击处理：https://x/a/t"))
    assert text.ok and text.platform_ids == {"msgid": "m2"}


async def test_dingtalk_card_text_and_errors() -> None:
    ding = StubDingTalk()
    m = msg("dingtalk", "card", {"dingtalk_card": {"card_data": {"title": "x"}}})
    result = await PlatformSender(dingtalk=ding).send(m)  # type: ignore[arg-type]
    assert result.ok and result.platform_ids["outTrackId"] == m.dedupe_id
    bad = await PlatformSender(dingtalk=StubDingTalk(ok=False)).send(m)  # type: ignore[arg-type]
    assert bad.error_kind == "card_unsupported"
    slow = await PlatformSender(dingtalk=StubDingTalk(error=ThrottleError("too fast", retry_after=600))).send(m)  # type: ignore[arg-type]
    assert slow.error_kind == "throttle" and slow.retry_after == 600
    text = await PlatformSender(dingtalk=ding).send(msg("dingtalk", "text", {}, text="hi"))  # type: ignore[arg-type]
    assert text.ok and text.platform_ids["task_id"] == "t1" and ding.calls[-1][2]["ref"]
