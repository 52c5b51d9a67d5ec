"""The small, platform-shaped method set the outbox calls to deliver on WeCom.

notifications/ never imports this module: bot/app.py hands it over as
``ctx.services["wecom_sender"]``. Every method returns a `Delivery` with the ids worth keeping, or
raises WeComError whose ``kind`` (errors.ErrorKind) says what to do next: retryable_token and
retryable_throttle (retry later), transient (outcome unknown; retry with the idempotency key),
permanent (fallback or dead-letter).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from bot.platforms.wecom.client import SendResult, WeComClient
from bot.platforms.wecom.errors import ErrorKind, WeComError, classify


@dataclass(frozen=True, slots=True)
class Delivery:
    platform: str = "wecom"
    msgid: str = ""
    response_code: str = ""
    invalid_users: tuple[str, ...] = ()

    @classmethod
    def of(cls, result: SendResult) -> "Delivery":
        return cls(msgid=result.msgid, response_code=result.response_code, invalid_users=result.invalid_users)


class WeComSender:
    platform = "wecom"

    def __init__(self, client: WeComClient) -> None:
        self.client = client

    async def send_text(self, user_id: str, text: str) -> Delivery:
        return Delivery.of(await self.client.send_text(user_id, text))

    async def send_markdown(self, user_id: str, markdown: str) -> Delivery:
        return Delivery.of(await self.client.send_markdown(user_id, markdown))

    async def send_card(self, user_id: str, card: Mapping[str, Any]) -> Delivery:
        """`card` is a rendered WeCom template_card (bot/cards render_wecom)."""
        return Delivery.of(await self.client.send_template_card(user_id, card))

    async def update_card(self, user_id: str, response_code: str, *, replace_name: str | None = None,
                          card: Mapping[str, Any] | None = None) -> Delivery:
        await self.client.update_template_card(response_code, userids=[user_id], replace_name=replace_name,
                                               template_card=card)
        return Delivery()

    async def recall(self, msgid: str) -> None:
        await self.client.recall(msgid)

    async def robot_send(self, robot_key: str, text: str, *, markdown: bool = False,
                         mentions: Iterable[str] = ()) -> Delivery:
        if markdown:
            await self.client.webhook_send(robot_key, markdown=text, mentioned_list=mentions)
        else:
            await self.client.webhook_send(robot_key, text=text, mentioned_list=mentions)
        return Delivery()

    @staticmethod
    def classify(error: BaseException) -> ErrorKind:
        if isinstance(error, WeComError):
            return error.kind
        return classify(None)
