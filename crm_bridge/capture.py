"""Every change leadbot commits becomes a change event, written to the outbox in the SAME
transaction as the change (so an event exists if and only if the change does).

Why capture at the session rather than a call in every feature: every state change in leadbot
already writes an ``audit_log`` row (or, for routing, a ``routing_decisions`` row) in its own
transaction. The capture watches those rows being flushed and, just before the transaction
commits, turns each into a change event (with a fresh snapshot of the entity) and one outbox row
per webhook URL. Features stay unaware of the bridge, and a new feature that audits its changes
is mirrored without further work.

Origin: a change made on behalf of the CRM runs inside :func:`crm_origin`; its audit rows are
kept (origin ``crm`` is recorded in them) but no event is emitted, so the CRM never gets its own
change echoed back.

The capture is installed per engine (``ChangeCapture.install``); sessions of other engines, and
every session when no capture is installed, pay one dictionary lookup.
"""

from __future__ import annotations

import contextvars
import hashlib
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Callable, Iterator, Mapping, Sequence

from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from store import captures
from store.models import AuditEntry, Customer, Identity, Lead, OutboxItem, Rep, RoutingDecision
from store.db import insert_for
from store.outbox import NewOutboxItem, row_values
from crm_bridge.events import ChangeEvent, event_id_for
from leadbot.clock import Clock

CHANNEL = "webhook"
KIND = "change"
_PENDING = "leadbot.crm_sync.pending"
_ENQUEUED = "leadbot.crm_sync.enqueued"

_origin: contextvars.ContextVar[str] = contextvars.ContextVar("leadbot_change_origin", default="leadbot")
_listening = False

# audit action -> event type (None: not a change the CRM follows)
AUDIT_EVENTS: Mapping[str, str] = {
    "lead.created": "lead.created",
    "lead.claimed": "lead.claimed",
    "lead.passed": "lead.released",
    # The ladder's pool return changes the lead without a routing decision: without this a CRM
    # mirror kept showing the last owner of a lead that sat in the pool.
    "lead.to_pool": "lead.pooled",
    "lead.reassigned": "lead.reassigned",
    "lead.stage_advanced": "lead.stage_advanced",
    "lead.first_contact": "lead.contacted",
    "customer.created": "customer.created",
    "customer.merged": "customer.merged",
    "customer.merge_undone": "customer.merge_undone",
    "identity.linked": "customer.identity_linked",
}


@contextmanager
def crm_origin() -> Iterator[None]:
    """Changes committed inside this block came from the CRM: audited, never echoed back."""
    token = _origin.set("crm")
    try:
        yield
    finally:
        _origin.reset(token)


def url_tag(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]


def outbox_key(event: ChangeEvent, url: str) -> str:
    """``crm:<entity>:<id>:<event>:<url>``: the entity prefix is what the order gate looks up."""
    return f"crm:{event.entity_type}:{event.entity_id}:{event.event_id}:{url_tag(url)}"


def outbox_items(event: ChangeEvent, urls: Sequence[str]) -> list[NewOutboxItem]:
    body = event.to_json()
    return [NewOutboxItem(key=outbox_key(event, url), channel=CHANNEL, kind=KIND, recipient=url,
                          payload={"event": body, "entity_key": event.entity_key},
                          lead_id=event.entity_id if event.entity_type == "lead" else None)
            for url in urls]


async def emit(session: AsyncSession, event: ChangeEvent, urls: Sequence[str], now: datetime) -> int:
    """Explicit emission inside the caller's transaction (resync, or code that does not audit).
    Returns the number of rows written (0 for an event already queued)."""
    from store.outbox import enqueue_in

    n = 0
    for item in outbox_items(event, urls):
        n += await enqueue_in(session, item, now) is not None
    return n


# ---- snapshots ---------------------------------------------------------------------------------

def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _rep_ref(session: Session, rep_id: int | None) -> dict[str, Any] | None:
    if rep_id is None:
        return None
    row = session.execute(select(Rep.id, Rep.external_id, Rep.name).where(Rep.id == rep_id)).one_or_none()
    if row is None:
        return {"id": rep_id, "external_id": None, "name": ""}
    return {"id": row.id, "external_id": row.external_id, "name": row.name}


def lead_snapshot(session: Session, lead_id: int) -> dict[str, Any] | None:
    """The lead as committed by this transaction (Core read: the ORM identity map may hold a
    stale copy after a Core UPDATE)."""
    t = Lead.__table__
    row = session.execute(select(t).where(t.c.id == lead_id)).mappings().one_or_none()
    if row is None:
        return None
    customer_ext = None
    if row["customer_id"] is not None:
        customer_ext = session.execute(select(Customer.external_id).where(
            Customer.id == row["customer_id"])).scalar_one_or_none()
    return {
        "id": row["id"], "external_id": row["external_id"],
        "customer": {"id": row["customer_id"], "external_id": customer_ext} if row["customer_id"] else None,
        "name": row["name"], "phone": row["phone"], "email": row["email"], "company": row["company"],
        "title": row["title"], "region": row["region"], "city": row["city"], "product_line": row["product_line"],
        "amount": row["amount"], "note": row["note"], "source_channel": row["source_channel"],
        "campaign": row["campaign"], "stage": row["stage"], "status": row["status"],
        "owner": _rep_ref(session, row["owner_id"]), "team_id": row["team_id"],
        "sla": {"assigned_at": _iso(row["assigned_at"]), "claimed_at": _iso(row["claimed_at"]),
                "first_contact_at": _iso(row["first_contact_at"]),
                "stage_entered_at": _iso(row["stage_entered_at"])},
        "created_at": _iso(row["created_at"]), "updated_at": _iso(row["updated_at"]), "version": row["version"],
    }


def customer_snapshot(session: Session, customer_id: int) -> dict[str, Any] | None:
    t = Customer.__table__
    row = session.execute(select(t).where(t.c.id == customer_id)).mappings().one_or_none()
    if row is None:
        return None
    merged_into = None
    if row["merged_into"] is not None:
        ext = session.execute(select(Customer.external_id).where(
            Customer.id == row["merged_into"])).scalar_one_or_none()
        merged_into = {"id": row["merged_into"], "external_id": ext}
    idents = session.execute(select(Identity.kind, Identity.value).where(
        Identity.customer_id == customer_id).order_by(Identity.id)).all()
    return {
        "id": row["id"], "external_id": row["external_id"], "name": row["display_name"],
        "company": row["company"], "title": row["title"], "city": row["city"], "address": row["address"],
        "status": row["status"], "merged_into": merged_into, "do_not_contact": bool(row["do_not_contact"]),
        "owner": _rep_ref(session, row["owner_id"]),
        "identities": [{"kind": k, "value": v} for k, v in idents],
        "created_at": _iso(row["created_at"]), "updated_at": _iso(row["updated_at"]), "version": row["version"],
    }


def snapshot(session: Session, entity_type: str, entity_id: int) -> dict[str, Any] | None:
    return (lead_snapshot if entity_type == "lead" else customer_snapshot)(session, entity_id)


def snapshot_event(session: Session, entity_type: str, entity_id: int, type_: str, event_id: str,
                   occurred_at: datetime, details: Mapping[str, Any] | None = None) -> ChangeEvent | None:
    snap = snapshot(session, entity_type, entity_id)
    if snap is None:
        return None
    data = {**dict(details or {}), entity_type: snap}
    return ChangeEvent(event_id=event_id, type=type_, occurred_at=occurred_at, entity_type=entity_type,
                       entity_id=entity_id, external_id=snap["external_id"], version=int(snap["version"]),
                       data=data)


# ---- translation -------------------------------------------------------------------------------

def events_for_audit(session: Session, audit: AuditEntry) -> list[ChangeEvent]:
    type_ = AUDIT_EVENTS.get(audit.action)
    if type_ is None or not audit.subject_id.isdigit():
        return []
    data = dict(audit.data or {})
    if data.get("origin") == "crm":
        return []
    entity = "lead" if type_.startswith("lead.") else "customer"
    subject = int(audit.subject_id)
    details: dict[str, Any] = {"actor": audit.actor, "change": data}
    if type_ == "customer.merged":
        out = []
        survivor, merged = int(data.get("survivor", subject)), data.get("merged")
        ext = {cid: session.execute(select(Customer.external_id).where(Customer.id == cid)).scalar_one_or_none()
               for cid in (survivor, merged) if cid is not None}
        refs = {"survivor": {"id": survivor, "external_id": ext.get(survivor)},
                "merged": {"id": merged, "external_id": ext.get(merged)}}
        for role, cid in (("survivor", survivor), ("merged", merged)):
            if cid is None:
                continue
            ev = snapshot_event(session, "customer", int(cid), type_, event_id_for(f"audit:{audit.id}:{role}"),
                                audit.at, {**details, **refs, "role": role})
            if ev is not None:
                out.append(ev)
        return out
    ev = snapshot_event(session, entity, subject, type_, event_id_for(f"audit:{audit.id}"), audit.at, details)
    return [ev] if ev is not None else []


def events_for_routing(session: Session, row: RoutingDecision) -> list[ChangeEvent]:
    type_ = "lead.pooled" if row.outcome == "pool" else "lead.assigned"
    details = {"actor": "router", "change": {"outcome": row.outcome, "rule": row.rule, "reason": row.reason,
                                             "rep": _rep_ref(session, row.chosen_rep_id),
                                             "previous_owner": _rep_ref(session, row.previous_owner_id),
                                             "trigger": (row.data or {}).get("trigger", "")}}
    ev = snapshot_event(session, "lead", row.lead_id, type_, event_id_for(f"routing:{row.id}"), row.at, details)
    return [ev] if ev is not None else []


# ---- the capture -------------------------------------------------------------------------------

class ChangeCapture:
    """Installed on one engine by bot/app.py when [crm_bridge] has webhook URLs."""

    def __init__(self, urls: Sequence[str], clock: Clock, *, on_enqueued: Callable[[], None] | None = None) -> None:
        self.urls = tuple(urls)
        self.clock = clock
        self.on_enqueued = on_enqueued

    def install(self, engine: AsyncEngine | Engine) -> None:
        _listen()
        captures.install(engine, self)

    @staticmethod
    def uninstall(engine: AsyncEngine | Engine) -> None:
        captures.uninstall(engine)

    def flush_events(self, session: Session, pending: list[tuple[Any, str]]) -> int:
        if not self.urls:
            return 0
        now = self.clock.now()
        insert = insert_for(session.get_bind().dialect.name)
        written = 0
        for obj, origin in pending:
            if origin == "crm":
                continue
            events = events_for_audit(session, obj) if isinstance(obj, AuditEntry) else events_for_routing(session, obj)
            for ev in events:
                for item in outbox_items(ev, self.urls):
                    stmt = (insert(OutboxItem).values(**row_values(item, now))
                            .on_conflict_do_nothing(index_elements=["idempotency_key"]))
                    written += session.execute(stmt).rowcount or 0
        return written


def _capture_for(session: Session) -> ChangeCapture | None:
    return captures.capture_of(session.bind)


def _after_flush(session: Session, _ctx: Any) -> None:
    if _capture_for(session) is None:
        return
    origin = _origin.get()
    found = [(o, origin) for o in session.new if isinstance(o, (AuditEntry, RoutingDecision))]
    if found:
        session.info.setdefault(_PENDING, []).extend(found)


def _before_commit(session: Session) -> None:
    capture = _capture_for(session)
    if capture is None or (not session.info.get(_PENDING) and not session.new):
        return
    session.flush()  # audit rows added after the last flush are collected now
    pending = session.info.pop(_PENDING, [])
    pending.sort(key=lambda p: (p[0].at, 0 if isinstance(p[0], RoutingDecision) else 1, p[0].id or 0))
    if pending and capture.flush_events(session, pending):
        session.info[_ENQUEUED] = capture


def _after_commit(session: Session) -> None:
    capture = session.info.pop(_ENQUEUED, None)
    if capture is not None and capture.on_enqueued is not None:
        capture.on_enqueued()


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_ENQUEUED, None)


def _listen() -> None:
    global _listening
    if _listening:
        return
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "before_commit", _before_commit)
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_soft_rollback", lambda s, _t: _after_rollback(s))
    _listening = True
