"""Neutral events: what the platform adapters turn raw callbacks into and handlers consume.

Standard library only. Handlers never see platform XML/JSON; a WeCom tap and a DingTalk tap on
the same button arrive as the same ``CardAction``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Mapping

Platform = Literal["wecom", "dingtalk"]


@dataclass(frozen=True, slots=True)
class FriendAdded:
    """A rep added (or was added by) an external contact: WeCom add_external_contact and
    add_half_external_contact (half = the customer has not confirmed yet)."""

    platform: Platform
    rep_user_id: str
    external_user_id: str
    occurred_at: datetime
    state: str = ""
    welcome_code: str = ""
    half: bool = False


@dataclass(frozen=True, slots=True)
class ContactChanged:
    """Every other external-contact change (edit, delete, del_follow_user, transfer_fail)."""

    platform: Platform
    change_type: str
    rep_user_id: str
    external_user_id: str
    occurred_at: datetime
    source: str = ""
    fail_reason: str = ""


@dataclass(frozen=True, slots=True)
class CardAction:
    """A button tap on a card. ``key`` is the whole button key (``claim:<token>``); ``action`` is
    the part before the colon and ``token`` the signed action token after it."""

    platform: Platform
    actor_id: str
    key: str
    occurred_at: datetime
    card_ref: str = ""  # WeCom TaskId / DingTalk outTrackId
    response_code: str = ""  # WeCom single-use code to update this copy of the card
    card_type: str = ""
    selected: tuple[tuple[str, tuple[str, ...]], ...] = ()
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def action(self) -> str:
        return self.key.split(":", 1)[0]

    @property
    def token(self) -> str:
        return self.key.split(":", 1)[1] if ":" in self.key else ""


@dataclass(frozen=True, slots=True)
class TextCommand:
    """A text message to the app or robot: 帮助/help, 我的线索, a name or phone to search."""

    platform: Platform
    sender_id: str
    text: str
    occurred_at: datetime
    message_id: str = ""
    conversation_id: str = ""
    is_group: bool = False
    reply_webhook: str = ""
    reply_webhook_expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RobotQuotaExhausted:
    """A robot message DingTalk delivered without its text because the organisation's API call
    quota is used up (errCode 20001; conformance D13, dt/develop-stream-mode-push-server)."""

    platform: Platform
    sender_id: str
    occurred_at: datetime
    error_code: int
    error_message: str = ""
    message_id: str = ""
    reply_webhook: str = ""
    reply_webhook_expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AgentEntered:
    platform: Platform
    user_id: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class CrmObjectChanged:
    """DingTalk CRM (ding_paas_object_data_*) changes: ids only, details fetched on demand."""

    platform: Platform
    change: str  # create | update | delete
    object_type: str
    data_id: str
    occurred_at: datetime
    corp_id: str = ""


@dataclass(frozen=True, slots=True)
class LeadSubmitted:
    lead_id: int
    source_channel: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """Anything a platform sends that leadbot has no use for yet: logged and acknowledged."""

    platform: Platform
    kind: str
    occurred_at: datetime
    raw: Mapping[str, str] = field(default_factory=dict)


Event = (FriendAdded | ContactChanged | CardAction | TextCommand | AgentEntered | CrmObjectChanged
         | LeadSubmitted | RobotQuotaExhausted | UnknownEvent)
