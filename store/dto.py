"""DTOs: what crm_bridge hands to the rest of leadbot. Plain frozen dataclasses, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping


@dataclass(frozen=True, slots=True)
class LeadInput:
    """A lead as a source submitted it, split into known fields and everything else."""

    fields: Mapping[str, Any]
    extra: Mapping[str, Any] = field(default_factory=dict)
    intake_key: str | None = None
    source_channel: str = "api"
    actor: str = "intake"
    customer_id: int | None = None  # known already (e.g. a matched WeCom friend): no matching needed
    source: str = ""  # the intake source ([intake] sources) that sent it


@dataclass(frozen=True, slots=True)
class Lead:
    id: int
    customer_id: int | None
    source_channel: str
    source_ref: str
    campaign: str
    name: str
    phone: str
    email: str
    company: str
    title: str
    region: str
    city: str
    product_line: str
    language: str
    amount: float | None
    note: str
    stage: str
    status: str
    owner_id: int | None
    team_id: int | None
    extra: Mapping[str, Any]
    flags: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    assigned_at: datetime | None = None
    claimed_at: datetime | None = None
    first_contact_at: datetime | None = None
    stage_entered_at: datetime | None = None
    last_activity_at: datetime | None = None
    version: int = 1
    external_id: str | None = None  # the CRM's id, when the CRM bridge knows it
    source: str = ""  # the intake source that sent it ("" when it did not come through intake)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[name] = value
        return out


@dataclass(frozen=True, slots=True)
class Rep:
    id: int
    external_id: str
    name: str
    wecom_userid: str | None
    dingtalk_userid: str | None
    team_id: int | None
    team: str
    role: str
    manager_id: int | None
    regions: tuple[str, ...]
    product_lines: tuple[str, ...]
    weight: float
    capacity: int
    status: str
    delivery: str
    backup_id: int | None = None
    daily_cap: int = 0
    working_hours: str = ""
    sidelined: bool = False
    miss_streak: int = 0
    last_active_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Team:
    id: int
    name: str
    manager_id: int | None
    wecom_robot_key: str = ""
    wecom_pool_chat: str = ""
    dingtalk_robot_webhook: str = ""
    dingtalk_robot_secret: str = ""
    dingtalk_pool_conversation: str = ""


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    external_id: str | None
    display_name: str
    company: str
    owner_id: int | None
    status: str
    merged_into: int | None
    attributes: Mapping[str, Any]
    identities: tuple[tuple[str, str], ...] = ()
    title: str = ""
    city: str = ""
    address: str = ""
    do_not_contact: bool = False
    version: int = 1


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """One CSV row's fate in an import: created, updated, or rejected with a reason."""

    line: int
    outcome: str
    reason: str = ""
    key: str = ""


@dataclass(frozen=True, slots=True)
class ImportSummary:
    created: int = 0
    updated: int = 0
    rejected: tuple[RowOutcome, ...] = ()
    notes: tuple[str, ...] = ()
