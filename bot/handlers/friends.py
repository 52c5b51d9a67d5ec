"""A new WeCom friend (add_external_contact): recognise the customer it already is, or make it one.

Known customer: the external_userid becomes one of its identities and the rep who added the
friend gets a card with that customer's summary (and its owner is told when it is someone else).
Unknown: a customer and a lead owned by the adding rep, with the contact-way State as channel.
When configured, the friend gets a welcome message (the add event's welcome_code, valid 20 s)
and, once recognised, the CRM name as its WeCom remark (through the outbox: durable, retried).

`resolve_contact` is the match / link / create path itself; DingTalk CRM customer events
(bot/handlers/crm_objects.py) go through it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Mapping

from bot.cards.builders import build_friend_match_card
from leadbot.i18n import t
from bot.cards.views import FriendMatchView
from bot.events import FriendAdded
from bot.handlers import handles
from store.dto import LeadInput
from store.lead_status import WORKING
from identity.service import (ContactInfo, IdentityConflict, create_customer_from_contact, link_contact,
                                         match_contact)
from store.outbox import NewOutboxItem

if TYPE_CHECKING:
    from bot.context import AppContext
    from store import dto

WELCOME_CODE_LIFE = timedelta(seconds=20)
REMARK_MAX_CHARS = 20  # externalcontact/remark: remark and remark_company, 20 characters each


def contact_from_wecom(data: Mapping[str, Any], rep_userid: str) -> ContactInfo:
    """externalcontact/get -> ContactInfo, with what the adding rep wrote about the contact."""
    ext = data.get("external_contact") or {}
    follow = next((f for f in data.get("follow_user") or [] if f.get("userid") == rep_userid), {})
    return ContactInfo(external_userid=str(ext.get("external_userid", "")), unionid=str(ext.get("unionid", "")),
                       name=str(ext.get("name", "")), corp_name=str(ext.get("corp_full_name") or ext.get("corp_name") or ""),
                       remark_mobiles=tuple(str(m) for m in follow.get("remark_mobiles") or ()),
                       remark=str(follow.get("remark", "")), remark_corp_name=str(follow.get("remark_corp_name", "")),
                       platform="wecom")


WECHAT_USER = 1  # externalcontact/get external_contact.type: 1 a WeChat user, 2 a WeCom user


async def _fetch_contact(ctx: "AppContext", event: FriendAdded) -> tuple[ContactInfo, int]:
    """The contact and its type (0 when unknown)."""
    client = ctx.services.wecom_client
    if client is None:
        return ContactInfo(external_userid=event.external_user_id, platform=event.platform), 0
    try:
        data = await client.get_external_contact(event.external_user_id)
    except Exception as e:  # the friend is still matched on what we know: the external_userid
        ctx.log.warning("friend.contact_fetch_failed", error=type(e).__name__)
        return ContactInfo(external_userid=event.external_user_id, platform=event.platform), 0
    try:
        kind = int((data.get("external_contact") or {}).get("type") or 0)
    except (TypeError, ValueError):
        kind = 0
    return contact_from_wecom(data, event.rep_user_id), kind


@dataclass(frozen=True, slots=True)
class Resolution:
    """What resolve_contact did: "known" (linked to an existing customer, the rep told), "already"
    (the contact was linked to that customer before: identifiers refreshed, nobody told again)
    or "new" (a customer and a claimed lead of the rep)."""

    kind: str
    customer_id: int | None
    lead_id: int | None = None
    reason: str = ""


async def resolve_contact(ctx: "AppContext", rep: "dto.Rep", contact: ContactInfo, *, key: str, channel: str,
                          extra: Mapping[str, Any], first_contact_via: str,
                          quiet_if_linked: str = "") -> Resolution:
    """Match a contact a rep brought in to the customer it already is, or make it one.

    ``key`` names the contact's source ("friend:wecom:<external_userid>") and makes everything
    idempotent: the rep's card, the owner's notice and the lead's intake key derive from it.
    ``quiet_if_linked``: an identity kind; when the matched customer already held the contact's
    identifier of that kind, nobody is told again (a CRM record's update events)."""
    actor = f"rep:{rep.id}"
    result = await match_contact(ctx.store, contact)
    if result.is_same and result.customer_id:
        links = await link_contact(ctx.store, result.customer_id, contact, actor)
        if quiet_if_linked and any(link.kind == quiet_if_linked and link.already for link in links):
            return Resolution("already", result.customer_id, reason=result.reason)
        await _tell_known(ctx, key, rep, result.customer_id, result.reason_in(ctx.lang))
        return Resolution("known", result.customer_id, reason=result.reason)
    try:
        customer = await create_customer_from_contact(ctx.store, contact, actor=actor, owner_id=rep.id)
    except IdentityConflict:
        # The same friend added twice at once: the other add created it; link to that one.
        again = await match_contact(ctx.store, contact)
        if again.customer_id:
            await _tell_known(ctx, key, rep, again.customer_id, again.reason_in(ctx.lang))
        return Resolution("known", again.customer_id, reason=again.reason)
    lead, created = await ctx.store.create_lead(LeadInput(
        fields={"name": contact.display_name(), "company": contact.company(),
                "phone": contact.remark_mobiles[0] if contact.remark_mobiles else ""},
        extra={**extra, **({"possible_duplicate_of": result.customer_id, "match_reason": result.reason_in(ctx.lang)}
                           if result.kind == "possible" else {})},
        intake_key=f"{key}:{rep.id}", source_channel=channel[:64], actor=actor, customer_id=customer.id))
    if created:
        # The rep is already talking to them: the lead is theirs and first contact has happened.
        actions = ctx.services.lead_actions
        await actions.claim(lead.id, rep.id, actor)
        await actions.first_contact(lead.id, actor, first_contact_via)
    ctx.log.info("friend.new_customer", customer_id=customer.id, lead_id=lead.id, match=result.kind,
                 platform=contact.platform)
    return Resolution("new", customer.id, lead.id, result.reason)


@handles(FriendAdded)
async def handle_add_friend(event: FriendAdded, ctx: "AppContext") -> None:
    rep = await ctx.store.rep_by_platform_id(event.platform, event.rep_user_id)
    if rep is None:
        ctx.log.info("friend.unknown_rep", platform=event.platform)
        return
    # First: the welcome code dies 20 s after the add.
    await _send_welcome(ctx, event)
    contact, contact_type = await _fetch_contact(ctx, event)
    outcome = await resolve_contact(
        ctx, rep, contact, key=f"friend:{event.platform}:{event.external_user_id}",
        channel=event.state or "wecom_friend",
        extra={"wecom_external_userid": event.external_user_id, "contact_state": event.state},
        first_contact_via="wecom_friend")
    if outcome.kind == "known" and outcome.customer_id:
        await _write_back_remark(ctx, event, outcome.customer_id, contact_type)


async def _send_welcome(ctx: "AppContext", event: FriendAdded) -> None:
    """Straight to WeCom, not through the outbox: a retry after 20 s could only fail (41051)."""
    wecom = ctx.settings.wecom
    text = wecom.welcome_text.strip() if wecom else ""
    client = ctx.services.wecom_client
    if not text or not event.welcome_code or client is None or event.platform != "wecom":
        return
    if ctx.clock.now() - event.occurred_at > WELCOME_CODE_LIFE:
        ctx.log.info("friend.welcome_expired", age_seconds=int((ctx.clock.now() - event.occurred_at).total_seconds()))
        return
    try:
        await client.send_welcome_msg(event.welcome_code, text)
    except Exception as e:  # 41051 (code used or expired), 41096 ... : the friend is still matched
        ctx.log.warning("friend.welcome_failed", error=type(e).__name__, errcode=getattr(e, "errcode", None))
        return
    ctx.log.info("friend.welcome_sent")


async def _write_back_remark(ctx: "AppContext", event: FriendAdded, customer_id: int, contact_type: int) -> None:
    """The CRM's name for the customer becomes the friend's remark on the rep's side, so the
    rep's WeChat list shows the name the team knows them by."""
    wecom = ctx.settings.wecom
    outbox = ctx.services.outbox
    if wecom is None or not wecom.write_back_remark or outbox is None or event.platform != "wecom":
        return
    customer = await ctx.store.get_customer(customer_id)
    if customer is None or not customer.display_name.strip():
        return
    payload: dict[str, Any] = {"userid": event.rep_user_id, "external_userid": event.external_user_id,
                               "remark": customer.display_name.strip()[:REMARK_MAX_CHARS], "rollup": False}
    if customer.company.strip() and contact_type == WECHAT_USER:
        # conformance W4 (wecom/92115 as quoted in xen0n/go-workwx docs/external_contact.md):
        # remark_company takes effect only for WeChat-user contacts; WeCom answers 0 and drops
        # it for anyone else. It reads back as follow_user[].remark_corp_name (contact_from_wecom).
        payload["remark_company"] = customer.company.strip()[:REMARK_MAX_CHARS]
    # No rep_id: a failed remark must not fall back to "the rep's other platform".
    await outbox.enqueue(NewOutboxItem(key=f"remark:wecom:{event.external_user_id}:{event.rep_user_id}:{customer_id}",
                                       channel="wecom", kind="remark", recipient=event.rep_user_id, payload=payload))
    worker = ctx.services.delivery_worker
    if worker is not None:
        worker.wake()


async def _tell_known(ctx: "AppContext", key: str, rep: "dto.Rep", customer_id: int, reason: str) -> None:
    customer = await ctx.store.get_customer(customer_id)
    if customer is None:
        return
    owner = await ctx.store.get_rep(customer.owner_id) if customer.owner_id else None
    open_leads = [lead for lead in await ctx.store.list_leads(limit=200) if lead.customer_id == customer_id
                  and lead.status in WORKING]
    latest = open_leads[0] if open_leads else None
    view = FriendMatchView(customer_id=customer_id, customer_name=customer.display_name, company=customer.company,
                           owner_name=owner.name if owner else "", owned_by_viewer=owner is not None and owner.id == rep.id,
                           stage=latest.stage if latest else "",
                           last_activity_at=latest.last_activity_at if latest else None,
                           open_leads=len(open_leads), match_reason=reason)
    flow = ctx.services.flow
    now = ctx.clock.now()
    card = build_friend_match_card(view, now=now, lang=ctx.lang)
    await flow.notify(rep, f"{key}:{rep.id}", card, reply=True)  # answers the rep adding the friend
    if owner is not None and owner.id != rep.id:
        await flow.tell(owner, f"{key}:owner:{owner.id}",
                        t("notice.friend_of_yours", ctx.lang, rep=rep.name, name=customer.display_name))
