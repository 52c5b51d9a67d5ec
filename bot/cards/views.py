"""Input views for the builders: plain data the rest of the app fills from crm_bridge DTOs.

They hold facts about a lead or customer, the same for every recipient. What differs per
recipient (buttons with tokens bound to them, the H5 link, card_ref, whether they may see the
full phone number) is passed to the builder as keyword arguments instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

Amount = Decimal | int | float


@dataclass(frozen=True, slots=True)
class DuplicateRef:
    """The existing customer a new lead probably duplicates."""

    name: str
    customer_id: int | str


@dataclass(frozen=True, slots=True)
class LeadCardView:
    """A lead as the cards show it.

    ``phone`` is the full number; builders mask it (138****5678) unless told the viewer claimed
    the lead. ``sla_due_at`` must be timezone-aware, like the ``now`` given to the builder.
    ``earlier_leads`` and ``activities`` are counts for the same customer.
    """

    lead_id: int | str
    customer_name: str
    company: str = ""
    phone: str = ""
    source_channel: str = ""
    campaign: str = ""
    region: str = ""
    amount: Amount | None = None
    earlier_leads: int = 0
    activities: int = 0
    duplicate_of: DuplicateRef | None = None
    sla_due_at: datetime | None = None
    owner_name: str = ""
    stage: str = ""
    silent_flag: bool = False
    state: str = "open"
    # Off hours: when the lead came in and when its first-touch clock starts, already in the
    # configured zone ("周六 22:30", "周一 09:00"); empty when they are the same moment.
    came_in_text: str = ""
    clock_starts_text: str = ""


@dataclass(frozen=True, slots=True)
class CustomerBrief:
    """One side of a suspected duplicate pair."""

    customer_id: int | str
    name: str
    company: str = ""
    phone: str = ""
    owner_name: str = ""


@dataclass(frozen=True, slots=True)
class DuplicateCardView:
    """``reasons`` are identity-resolution codes (phone, email, name_company, …); ``score`` 0–1."""

    incoming: CustomerBrief
    existing: CustomerBrief
    reasons: tuple[str, ...] = ()
    score: float | None = None


@dataclass(frozen=True, slots=True)
class RollupItem:
    """One line of a digest roll-up. A LeadCardView works here too (same attribute names)."""

    customer_name: str
    company: str = ""
    source_channel: str = ""
    lead_id: int | str = ""


@dataclass(frozen=True, slots=True)
class FriendMatchView:
    """A new WeCom friend matched to an existing customer.

    ``contact_name`` is the friend's WeChat/WeCom display name; ``match_reason`` an identity
    code (phone, unionid, …). ``owned_by_viewer`` is False when another rep owns the customer.
    """

    customer_id: int | str
    customer_name: str
    company: str = ""
    phone: str = ""
    contact_name: str = ""
    owner_name: str = ""
    owned_by_viewer: bool = False
    stage: str = ""
    last_activity_at: datetime | None = None
    open_leads: int = 0
    match_reason: str = ""


@dataclass(frozen=True, slots=True)
class StormLine:
    """One escalated lead of a storm digest: ``summary`` names customer, company and owner
    (never the phone); ``since`` is when the lead was assigned (how long it has waited)."""

    lead_id: int | str
    summary: str
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class StormOutcome:
    """What a batch reassignment did to one lead: ``moved`` (to ``to_name``), ``pooled``,
    ``deferred``, or skipped with ``why`` (already the catalogue's words)."""

    name: str
    outcome: str
    to_name: str = ""
    why: str = ""
