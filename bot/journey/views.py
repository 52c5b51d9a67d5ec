"""From CRM DTOs to the card views the builders take (bot/cards stays pure; the lookups are here)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.cards.views import DuplicateRef, LeadCardView
from bot.journey.identity import suggested_duplicate
from bot.journey.lookup import LOOKUP
from store import dto
from crm.leads import LeadActions
from leadbot.time_text import local_text
from leadbot.workcal import calendar_of

if TYPE_CHECKING:
    from bot.context import AppContext


async def lead_card_view(ctx: "AppContext", lead: dto.Lead, *, sla_due_at: datetime | None = None,
                         state: str | None = None, customer: dto.Customer | None = LOOKUP) -> LeadCardView:
    actions: LeadActions = ctx.services.lead_actions
    if customer is LOOKUP:
        customer = await ctx.store.get_customer(lead.customer_id) if lead.customer_id else None
    earlier, activities = await actions.history_counts(lead.customer_id, exclude_lead=lead.id)
    owner_name = ""
    if lead.owner_id and lead.claimed_at:
        owner_name = (await actions.rep_names([lead.owner_id])).get(lead.owner_id, "")
    duplicate = None
    best = suggested_duplicate(customer)
    if best is not None:
        other = await ctx.store.get_customer(int(best["customer_id"]))
        if other is not None and other.status == "active":
            duplicate = DuplicateRef(name=other.display_name or other.company, customer_id=other.id)
    silent = False
    now = ctx.clock.now()
    silence = ctx.services.is_silent
    if silence is not None:
        silent = bool(silence(lead, now))
    team = await ctx.store.get_team(lead.team_id) if lead.team_id and ctx.settings.calendar.teams else None
    came_in, starts = clock_texts(ctx, lead, now, team.name if team else "")
    return LeadCardView(
        lead_id=lead.id,
        customer_name=lead.name or (customer.display_name if customer else ""),
        company=lead.company or (customer.company if customer else ""),
        phone=lead.phone,
        source_channel=lead.source_channel,
        campaign=lead.campaign,
        region=" ".join(x for x in (lead.region, lead.city) if x),
        amount=lead.amount,
        earlier_leads=earlier,
        activities=activities,
        duplicate_of=duplicate,
        sla_due_at=sla_due_at,
        owner_name=owner_name,
        stage=lead.stage,
        silent_flag=silent,
        state=state or ("claimed" if lead.claimed_at else "open"),
        came_in_text=came_in,
        clock_starts_text=starts,
    )


def clock_texts(ctx: "AppContext", lead: dto.Lead, now: datetime, team: str = "") -> tuple[str, str]:
    """("周六 22:30", "周一 09:00") when the lead's first-touch clock starts later than it came in
    (off hours: it waited for the window, or working-time SLAs start counting then), else ("", "")."""
    calendar = calendar_of(ctx.settings.calendar, team)
    came = lead.created_at
    assigned = lead.assigned_at or now
    starts = calendar.next_working_instant(assigned) if ctx.settings.sla.working_time else assigned
    if starts - came < timedelta(minutes=1):
        return "", ""
    if abs(starts - calendar.next_working_instant(came)) >= timedelta(minutes=1):
        # The clock started later for another reason (passed on, reassigned, back from the pool):
        # not the working window, so "came in ..., counts from ..." would tell a wrong story.
        return "", ""
    return local_text(came, calendar, ctx.lang, now=now), local_text(starts, calendar, ctx.lang, now=now)
