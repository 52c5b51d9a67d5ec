"""A new WeCom friend (add_external_contact): recognise the customer it already is, or make it one.

Known customer: the external_userid becomes one of its identities and the rep who added the
friend gets a card with that customer's summary (and its owner is told when it is someone else).
Unknown: a customer and a lead owned by the adding rep, with the contact-way State as channel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from bot.cards.builders import build_friend_match_card
from bot.cards.i18n import t
from bot.cards.views import FriendMatchView
from bot.events import FriendAdded
from bot.handlers import handles
from crm_bridge.dto import LeadInput
from crm_bridge.identity.service import (ContactInfo, IdentityConflict, create_customer_from_contact, link_contact,
                                         match_contact)

if TYPE_CHECKING:
    from bot.context import AppContext
    from crm_bridge import dto


def contact_from_wecom(data: Mapping[str, Any], rep_userid: str) -> ContactInfo:
    """externalcontact/get -> ContactInfo, with what the adding rep wrote about the contact."""
    ext = data.get("external_contact") or {}
    follow = next((f for f in data.get("follow_user") or [] if f.get("userid") == rep_userid), {})
    return ContactInfo(external_userid=str(ext.get("external_userid", "")), unionid=str(ext.get("unionid", "")),
                       name=str(ext.get("name", "")), corp_name=str(ext.get("corp_full_name") or ext.get("corp_name") or ""),
                       remark_mobiles=tuple(str(m) for m in follow.get("remark_mobiles") or ()),
                       remark=str(follow.get("remark", "")), remark_corp_name=str(follow.get("remark_corp_name", "")),
                       platform="wecom")


async def _fetch_contact(ctx: "AppContext", event: FriendAdded) -> ContactInfo:
    client = ctx.services.get("wecom_client")
    if client is None:
        return ContactInfo(external_userid=event.external_user_id, platform=event.platform)
    try:
        data = await client.get_external_contact(event.external_user_id)
    except Exception as e:  # the friend is still matched on what we know: the external_userid
        ctx.log.warning("friend.contact_fetch_failed", error=type(e).__name__)
        return ContactInfo(external_userid=event.external_user_id, platform=event.platform)
    return contact_from_wecom(data, event.rep_user_id)


@handles(FriendAdded)
async def handle_add_friend(event: FriendAdded, ctx: "AppContext") -> None:
    rep = await ctx.store.rep_by_platform_id(event.platform, event.rep_user_id)
    if rep is None:
        ctx.log.info("friend.unknown_rep", platform=event.platform)
        return
    contact = await _fetch_contact(ctx, event)
    actor = f"rep:{rep.id}"
    result = await match_contact(ctx.store, contact)
    if result.is_same and result.customer_id:
        await link_contact(ctx.store, result.customer_id, contact, actor)
        await _tell_known(ctx, event, rep, result.customer_id, result.reason)
        return
    try:
        customer = await create_customer_from_contact(ctx.store, contact, actor=actor, owner_id=rep.id)
    except IdentityConflict:
        # The same friend added twice at once: the other add created it; link to that one.
        again = await match_contact(ctx.store, contact)
        if again.customer_id:
            await _tell_known(ctx, event, rep, again.customer_id, again.reason)
        return
    channel = (event.state or "wecom_friend")[:64]
    lead, created = await ctx.store.create_lead(LeadInput(
        fields={"name": contact.display_name(), "company": contact.company(),
                "phone": contact.remark_mobiles[0] if contact.remark_mobiles else ""},
        extra={"wecom_external_userid": event.external_user_id, "contact_state": event.state,
               **({"possible_duplicate_of": result.customer_id, "match_reason": result.reason}
                  if result.kind == "possible" else {})},
        intake_key=f"friend:{event.platform}:{event.external_user_id}:{rep.id}", source_channel=channel,
        actor=actor, customer_id=customer.id))
    if created:
        # The rep is already talking to them: the lead is theirs and first contact has happened.
        actions = ctx.services["lead_actions"]
        await actions.claim(lead.id, rep.id, actor)
        await actions.first_contact(lead.id, actor, "wecom_friend")
    ctx.log.info("friend.new_customer", customer_id=customer.id, lead_id=lead.id, match=result.kind)


async def _tell_known(ctx: "AppContext", event: FriendAdded, rep: "dto.Rep", customer_id: int, reason: str) -> None:
    customer = await ctx.store.get_customer(customer_id)
    if customer is None:
        return
    owner = await ctx.store.get_rep(customer.owner_id) if customer.owner_id else None
    open_leads = [lead for lead in await ctx.store.list_leads(limit=200) if lead.customer_id == customer_id
                  and lead.status in ("new", "assigned", "pool", "claimed")]
    latest = open_leads[0] if open_leads else None
    view = FriendMatchView(customer_id=customer_id, customer_name=customer.display_name, company=customer.company,
                           owner_name=owner.name if owner else "", owned_by_viewer=owner is not None and owner.id == rep.id,
                           stage=latest.stage if latest else "",
                           last_activity_at=latest.last_activity_at if latest else None,
                           open_leads=len(open_leads), match_reason=reason)
    flow = ctx.services["flow"]
    now = ctx.clock.now()
    card = build_friend_match_card(view, now=now, lang=ctx.lang)
    await flow.notify(rep, f"friend:{event.platform}:{event.external_user_id}:{rep.id}", card)
    if owner is not None and owner.id != rep.id:
        await flow.tell(owner, f"friend:{event.platform}:{event.external_user_id}:owner:{owner.id}",
                        t("notice.friend_of_yours", ctx.lang, rep=rep.name, name=customer.display_name))
