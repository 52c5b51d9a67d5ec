"""DingTalk CRM customer events (ding_paas_object_data_create|update|delete): the same
recognition as a new WeCom friend.

The event carries ids only, so the record is read back from DingTalk's CRM (customers and
contacts), made a ContactInfo (name, company, phones, the record's own id as a ``dingtalk_id``
identity ``crm:<instance id>``) and run through friends.resolve_contact with the record's owner
(负责人) or creator as the rep who brought it in: a known customer gets the identity linked and
the rep a card (its owner a notice when that is someone else); an unknown one becomes a customer
and a claimed lead of that rep. An update of a record already linked refreshes its identifiers
quietly. A delete is logged and audited; leadbot never deletes a customer because DingTalk did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.events import CrmObjectChanged
from bot.handlers import handles
from bot.handlers.friends import resolve_contact
from bot.platforms.dingtalk.crm import READABLE_TYPES, CrmRecord, candidate_reps
from bot.platforms.dingtalk.errors import DingTalkError
from identity.service import ContactInfo, match_contact

if TYPE_CHECKING:
    from bot.context import AppContext
    from store import dto

ACTOR = "dingtalk:crm"
IDENTITY_PREFIX = "crm:"


def crm_identity(data_id: str) -> str:
    """The dingtalk_id a CRM record is known by (prefixed: a record id is not a person's id)."""
    return f"{IDENTITY_PREFIX}{data_id}"


def contact_from_crm(record: CrmRecord) -> ContactInfo:
    company = record.name if record.is_company else record.company
    return ContactInfo(name=record.name, corp_name=company, remark_mobiles=record.phones,
                       email=record.emails[0] if record.emails else "", unionid=record.unionid,
                       dingtalk_id=crm_identity(record.instance_id), platform="dingtalk")


async def _rep_for(ctx: "AppContext", record: CrmRecord) -> "dto.Rep | None":
    for userid in candidate_reps(record):
        rep = await ctx.store.rep_by_platform_id("dingtalk", userid)
        if rep is not None:
            return rep
    return None


@handles(CrmObjectChanged)
async def handle_change_crm_object(event: CrmObjectChanged, ctx: "AppContext") -> None:
    log = ctx.log
    if event.object_type not in READABLE_TYPES or not event.data_id:
        log.info("crm.object_ignored", object_type=event.object_type, change=event.change)
        return
    if event.change == "delete":
        await _deleted(ctx, event)
        return
    if event.change not in ("create", "update"):
        log.info("crm.change_ignored", object_type=event.object_type, change=event.change)
        return
    client = ctx.services.dingtalk_client
    if client is None:
        log.warning("crm.no_dingtalk_client", object_type=event.object_type)
        return
    try:
        records = await client.get_crm_records(event.object_type, [event.data_id])
    except DingTalkError as e:
        if e.retryable:
            raise  # the inbox tries again
        log.warning("crm.fetch_refused", object_type=event.object_type, code=e.code, kind=e.kind)
        await ctx.store.audit(ACTOR, "crm.fetch_refused", "dingtalk_crm", event.data_id,
                              {"object_type": event.object_type, "change": event.change, "code": str(e.code)})
        return
    record = next((r for r in records if r.instance_id == event.data_id), None)
    if record is None:
        # Deleted again since, or out of the app's data scope: nothing to match on.
        log.info("crm.object_not_found", object_type=event.object_type, change=event.change)
        return
    rep = await _rep_for(ctx, record)
    if rep is None:
        log.info("crm.unknown_rep", object_type=event.object_type)
        return
    contact = contact_from_crm(record)
    if not contact.display_name() and not contact.identities():
        log.info("crm.object_empty", object_type=event.object_type)
        return
    outcome = await resolve_contact(
        ctx, rep, contact, key=f"crm:{event.platform}:{event.data_id}", channel="dingtalk_crm",
        extra={"dingtalk_crm_id": event.data_id, "dingtalk_crm_type": event.object_type},
        first_contact_via="dingtalk_crm", quiet_if_linked="dingtalk_id")
    log.info("crm.object_resolved", object_type=event.object_type, change=event.change, outcome=outcome.kind,
             customer_id=outcome.customer_id, lead_id=outcome.lead_id)


async def _deleted(ctx: "AppContext", event: CrmObjectChanged) -> None:
    """Audited, never acted on: a record deleted in DingTalk may be a clean-up of a duplicate
    there, and the customer here has leads, history and other identities."""
    found = await match_contact(ctx.store, ContactInfo(dingtalk_id=crm_identity(event.data_id), platform="dingtalk"))
    customer_id = found.customer_id if found.is_same else None
    ctx.log.info("crm.object_deleted_upstream", object_type=event.object_type, customer_id=customer_id)
    await ctx.store.audit(ACTOR, "crm.object_deleted_upstream", "customer" if customer_id else "dingtalk_crm",
                          str(customer_id) if customer_id else event.data_id,
                          {"object_type": event.object_type, "data_id": event.data_id, "kept": True,
                           "occurred_at": event.occurred_at.isoformat()})
