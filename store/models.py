"""SQLAlchemy models: the one metadata behind the CRM store and the durable inbox/outbox/timers.

Only crm_bridge imports SQLAlchemy; everything else sees DTOs (store.dto).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer,
                        MetaData, String, Text, TypeDecorator, UniqueConstraint, text)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, always returns aware datetimes (SQLite forgets the zone, PostgreSQL keeps it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware one")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# BIGINT on PostgreSQL, but INTEGER on SQLite so the primary key stays the rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    manager_id: Mapped[int | None] = mapped_column(BigId)
    wecom_robot_key: Mapped[str] = mapped_column(String(256), default="")
    wecom_pool_chat: Mapped[str] = mapped_column(String(128), default="")
    dingtalk_robot_webhook: Mapped[str] = mapped_column(String(512), default="")
    dingtalk_robot_secret: Mapped[str] = mapped_column(String(256), default="")
    dingtalk_pool_conversation: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime]


class Rep(Base):
    __tablename__ = "reps"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    wecom_userid: Mapped[str | None] = mapped_column(String(128), unique=True)
    dingtalk_userid: Mapped[str | None] = mapped_column(String(128), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="rep")
    manager_id: Mapped[int | None] = mapped_column(BigId)
    backup_id: Mapped[int | None] = mapped_column(BigId)
    regions: Mapped[list[Any]] = mapped_column(default=list)
    product_lines: Mapped[list[Any]] = mapped_column(default=list)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    capacity: Mapped[int] = mapped_column(Integer, default=0)  # open leads; 0 = unlimited
    daily_cap: Mapped[int] = mapped_column(Integer, default=0)  # leads per day; 0 = unlimited
    status: Mapped[str] = mapped_column(String(16), default="active")
    delivery: Mapped[str] = mapped_column(String(8), default="auto")
    working_hours: Mapped[str] = mapped_column(String(32), default="")
    sidelined: Mapped[bool] = mapped_column(Boolean, default=False)
    miss_streak: Mapped[int] = mapped_column(Integer, default=0)
    ontime_streak: Mapped[int] = mapped_column(Integer, default=0)
    last_active_at: Mapped[datetime | None]
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    display_name: Mapped[str] = mapped_column(String(256), default="")
    company: Mapped[str] = mapped_column(String(256), default="")
    title: Mapped[str] = mapped_column(String(128), default="")
    city: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str] = mapped_column(String(512), default="")
    normalized_name: Mapped[str] = mapped_column(String(256), default="", index=True)
    normalized_company: Mapped[str] = mapped_column(String(256), default="", index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("reps.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    merged_into: Mapped[int | None] = mapped_column(BigId, index=True)
    do_not_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(index=True)


class Identity(Base):
    __tablename__ = "identities"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(256))
    raw: Mapped[str] = mapped_column(String(256), default="")
    strong: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    __table_args__ = (
        # Strong identifiers belong to exactly one customer; weak ones (a switchboard) may repeat.
        Index("uq_identities_strong", "kind", "value", unique=True,
              sqlite_where=text("strong = 1"), postgresql_where=text("strong")),
        Index("ix_identities_kind_value", "kind", "value"),
    )


class Lead(Base):
    __tablename__ = "leads"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    intake_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    # The intake source ([intake] sources) that sent it: a source reads only its own leads.
    source: Mapped[str] = mapped_column(String(64), default="", server_default="", index=True)
    external_id: Mapped[str | None] = mapped_column(String(128), unique=True)  # the CRM's id (crm_bridge)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    source_channel: Mapped[str] = mapped_column(String(64), default="api")
    source_ref: Mapped[str] = mapped_column(String(256), default="")
    campaign: Mapped[str] = mapped_column(String(256), default="")
    name: Mapped[str] = mapped_column(String(256), default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    email: Mapped[str] = mapped_column(String(256), default="")
    company: Mapped[str] = mapped_column(String(256), default="")
    title: Mapped[str] = mapped_column(String(128), default="")
    region: Mapped[str] = mapped_column(String(64), default="")
    city: Mapped[str] = mapped_column(String(64), default="")
    product_line: Mapped[str] = mapped_column(String(128), default="")
    language: Mapped[str] = mapped_column(String(16), default="")
    amount: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text, default="")
    stage: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("reps.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(BigId)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    flags: Mapped[list[Any]] = mapped_column(default=list)
    assigned_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    first_contact_at: Mapped[datetime | None]
    stage_entered_at: Mapped[datetime | None]
    last_activity_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime] = mapped_column(index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Routing counts each candidate's open leads on every decision: an index-only count.
    __table_args__ = (Index("ix_leads_owner_status", "owner_id", "status"),)


class StageHistory(Base):
    __tablename__ = "stage_history"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    from_stage: Mapped[str] = mapped_column(String(64), default="")
    to_stage: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128), default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime]


class Activity(Base):
    __tablename__ = "activities"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime]


class RoutingDecision(Base):
    __tablename__ = "routing_decisions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    rule: Mapped[str] = mapped_column(String(128), default="")
    rule_version: Mapped[str] = mapped_column(String(64), default="")
    strategy: Mapped[str] = mapped_column(String(32), default="")
    candidates: Mapped[list[Any]] = mapped_column(default=list)
    chosen_rep_id: Mapped[int | None] = mapped_column(BigId)
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]
    # sticky|assigned|backup|manager|pool (routing.decide.OUTCOMES)
    outcome: Mapped[str] = mapped_column(String(16), default="", server_default="")
    team_id: Mapped[int | None] = mapped_column(BigId)
    previous_owner_id: Mapped[int | None] = mapped_column(BigId)
    # The inputs behind the decision (matched conditions, pointer before/after, trigger).
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Daily caps count today's decisions per rep (index-only: outcome is in the index).
    __table_args__ = (Index("ix_routing_decisions_load", "chosen_rep_id", "at", "outcome"),)


class RoutingState(Base):
    """Persistent round-robin pointers, so fairness survives restarts and several processes."""

    __tablename__ = "routing_state"
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)


class Timer(Base):
    __tablename__ = "timers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    lead_id: Mapped[int | None] = mapped_column(BigId, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|fired|cancelled
    fired_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    # Who is firing the timer and until when: renewed while the action runs (store.leases).
    lease_owner: Mapped[str] = mapped_column(String(128), default="")
    lease_until: Mapped[datetime | None]
    __table_args__ = (Index("ix_timers_state_due", "state", "due_at"),)


class InboxItem(Base):
    __tablename__ = "inbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    dedupe_key: Mapped[str] = mapped_column(String(400), unique=True)
    kind: Mapped[str] = mapped_column(String(64), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|done|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    # While state is processing: which process holds the row ("host:pid") and until when.
    lease_owner: Mapped[str] = mapped_column(String(128), default="", server_default="")
    lease_until: Mapped[datetime | None]
    __table_args__ = (Index("ix_inbox_state_id", "state", "id"),)


class OutboxItem(Base):
    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(400), unique=True)
    channel: Mapped[str] = mapped_column(String(32))  # wecom|dingtalk|wecom_robot|dingtalk_robot|webhook
    kind: Mapped[str] = mapped_column(String(32))  # card|text|card_update|robot|...
    recipient: Mapped[str] = mapped_column(String(256), default="")
    rep_id: Mapped[int | None] = mapped_column(BigId, index=True)
    lead_id: Mapped[int | None] = mapped_column(BigId, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sent|dead|rolled_up
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    __table_args__ = (Index("ix_outbox_state_next", "state", "next_attempt_at"),
                      # Every tick re-reads the recipients' send windows (all processes' sends).
                      Index("ix_outbox_recipient_sent", "recipient", "sent_at"))


class CardCopy(Base):
    """One delivered copy of a card: what is needed to update or revoke it later."""

    __tablename__ = "cards"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lead_id: Mapped[int | None] = mapped_column(BigId, index=True)
    card_kind: Mapped[str] = mapped_column(String(32))
    platform: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(256))
    card_ref: Mapped[str] = mapped_column(String(256), index=True)  # task_id | outTrackId
    msgid: Mapped[str] = mapped_column(String(128), default="")
    response_code: Mapped[str] = mapped_column(String(256), default="")
    # WeCom: a response_code updates a card once, within 72 h (conformance W1). When the newest
    # code arrived (send answer or tap) and when it was spent; NULL spent = still usable.
    code_issued_at: Mapped[datetime | None]
    code_spent_at: Mapped[datetime | None]
    # A digest of what the copy shows now (bot.journey.flow.headline), so a change that leaves the copy's
    # headline as it is does not spend a WeCom code.
    shown: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # The view's own facts, e.g. whose lead an escalation was about and the deadline it missed.
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    state: Mapped[str] = mapped_column(String(32), default="open")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Merge(Base):
    __tablename__ = "merges"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    survivor_id: Mapped[int] = mapped_column(BigId, index=True)
    merged_id: Mapped[int] = mapped_column(BigId, index=True)
    snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor: Mapped[str] = mapped_column(String(128), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    undone_at: Mapped[datetime | None]


class DistinctPair(Base):
    """Two customers a person confirmed are different: never suggested as duplicates again."""

    __tablename__ = "distinct_pairs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_a: Mapped[int] = mapped_column(BigId)
    customer_b: Mapped[int] = mapped_column(BigId)
    actor: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("customer_a", "customer_b"),)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(128), default="")
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32), default="")
    subject_id: Mapped[str] = mapped_column(String(64), default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class KeyValue(Base):
    """Small shared state: the generated signing key, platform access tokens shared by processes."""

    __tablename__ = "kv"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime | None]


class SendScope(Base):
    """One per-recipient or per-robot platform limit (``wecom:<userid>``, ``dingtalk_robot:<hash>``):
    the row every reservation for the scope locks first (store.send_budget)."""

    __tablename__ = "send_scopes"
    scope: Mapped[str] = mapped_column(String(300), primary_key=True)


class SendReservation(Base):
    """One message counted against a scope's windows, by whichever process sends it: ``held``
    from before the send until the platform's answer (``at`` = the latest instant the platform
    may receive it), then ``sent`` (``at`` = the answer's time); a send that never reached the
    platform deletes its row."""

    __tablename__ = "send_reservations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scope: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(8), default="held")
    holder: Mapped[str] = mapped_column(String(128), default="")
    __table_args__ = (Index("ix_send_reservations_scope_at", "scope", "at"),)
