"""Builders: views (what the CRM knows) -> neutral Card (what a person should see).

Per-recipient inputs are keyword arguments: ``buttons`` (pre-signed by the caller, either a
mapping action -> key such as ``{"claim": "claim:<token>"}`` or ready Buttons), ``link`` (the H5
page), ``card_ref`` (task_id / outTrackId of this copy) and ``claimed_by_viewer`` (may this viewer
see the full phone number). Fields are ordered by importance: WeCom shows only the first six.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Iterable, Mapping, Sequence, Union

from bot.cards.formatting import (
    format_ago,
    format_amount,
    format_duration,
    format_percent,
    mask_phone,
    minutes_left,
    sla_countdown,
    sla_seconds_left,
)
from leadbot.i18n import lookup, normalize_lang, stage_name, t
from bot.cards.model import ACTIONS, Button, Card, Field
from bot.cards.views import (
    CustomerBrief,
    DuplicateCardView,
    FriendMatchView,
    LeadCardView,
    RollupItem,
    StormLine,
    StormOutcome,
)

ButtonSpec = Union[Mapping[str, str], Sequence[Button]]

# Buttons always appear in this order whoever passes them, so a rep's thumb learns one layout.
_ACTION_STYLE = {
    "claim": "primary", "advance": "primary", "merge": "primary", "distinct": "default",
    "reassign": "primary", "snooze": "default", "pass": "default", "undo": "default",
    "reinstate": "primary",
}
ROLLUP_VISIBLE_ITEMS = 5


def make_buttons(spec: ButtonSpec | None, lang: str = "zh") -> tuple[Button, ...]:
    """Turns ``{"claim": "claim:<token>", ...}`` into Buttons with catalogue texts and styles.

    Ready Buttons are kept as given (the caller chose text and order on purpose).
    """
    if not spec:
        return ()
    if not isinstance(spec, Mapping):
        buttons = tuple(spec)
        for b in buttons:
            if not isinstance(b, Button):
                raise TypeError("buttons must be a mapping action -> key or a sequence of Button")
        return buttons
    unknown = set(spec) - set(ACTIONS)
    if unknown:
        raise ValueError(f"unknown button actions: {sorted(unknown)}")
    out = []
    for action in ACTIONS:
        key = spec.get(action)
        if not key:
            continue
        if not key.startswith(action + ":"):
            raise ValueError(f"the key for {action!r} must start with '{action}:'")
        out.append(Button(key=key, text=t(f"button.{action}", lang), style=_ACTION_STYLE[action]))
    return tuple(out)


# --- small shared pieces ------------------------------------------------------------------

def _name(name: str, lang: str) -> str:
    return name.strip() or t("customer.unnamed", lang)


def _phone(phone: str, reveal: bool) -> str:
    return phone.strip() if reveal else mask_phone(phone)


def _joined(*parts: str) -> str:
    return " · ".join(p for p in parts if p)


def _channel(view: LeadCardView | RollupItem, lang: str) -> str:
    channel = lookup("channel", view.source_channel, lang) if view.source_channel else ""
    return _joined(channel, getattr(view, "campaign", ""))


def _history(view: LeadCardView, lang: str) -> str:
    if view.earlier_leads or view.activities:
        # Only what there is: "3 条跟进记录", never "此前 0 条线索 · 3 条跟进记录".
        return _joined(t("count.earlier_leads", lang, n=view.earlier_leads) if view.earlier_leads else "",
                       t("count.activities", lang, n=view.activities) if view.activities else "")
    return t("lead.first_contact", lang)


def _sla_field(view: LeadCardView, now: datetime, lang: str) -> tuple[Field | None, bool]:
    # The first-touch clock only matters while nobody has picked the lead up.
    if view.sla_due_at is None or view.state != "open":
        return None, False
    text, overdue = sla_countdown(view.sla_due_at, now, lang)
    return Field(t("field.sla", lang), text, alert=overdue), overdue


def _lead_fields(view: LeadCardView, now: datetime, lang: str, *,
                 show_owner: bool = True) -> tuple[list[Field], list[str], bool]:
    """The lead facts every lead-shaped card shares; returns fields, badges and overdue."""
    fields: list[Field] = []
    badges: list[str] = []
    sla, overdue = _sla_field(view, now, lang)
    if view.source_channel or view.campaign:
        fields.append(Field(t("field.channel", lang), _channel(view, lang)))
    if sla:
        fields.append(sla)
    if view.came_in_text and view.clock_starts_text and view.state == "open":
        fields.append(Field(t("field.timing", lang), t("timing.off_hours", lang, came=view.came_in_text,
                                                       starts=view.clock_starts_text)))
    if view.amount is not None:
        fields.append(Field(t("field.amount", lang), format_amount(view.amount, lang)))
    if view.region:
        fields.append(Field(t("field.region", lang), view.region))
    if view.duplicate_of is not None:
        fields.append(Field(t("field.duplicate", lang),
                            t("duplicate.question", lang, name=_name(view.duplicate_of.name, lang)),
                            alert=True))
    fields.append(Field(t("field.history", lang), _history(view, lang)))
    if show_owner and view.owner_name and view.state != "open":
        fields.append(Field(t("field.owner", lang), view.owner_name))
    if view.stage:
        fields.append(Field(t("field.stage", lang), stage_name(view.stage, lang)))
    if view.silent_flag:
        badges.append(t("badge.silent", lang))
    if view.duplicate_of is not None:
        badges.append(t("badge.duplicate", lang))
    if overdue:
        badges.append(t("badge.overdue", lang))
    return fields, badges, overdue


def _tone(*, alert: bool = False, warning: bool = False, good: bool = False) -> str:
    if alert:
        return "alert"
    if warning:
        return "warning"
    return "good" if good else "normal"


def _card_state(view_state: str) -> str:
    # Lead states from the CRM map onto card states; anything unknown shows as "open".
    return view_state if view_state in ("open", "claimed", "closed", "merged") else "open"


# --- lead cards -----------------------------------------------------------------------------

def build_lead_card(view: LeadCardView, *, now: datetime, lang: str = "zh",
                    buttons: ButtonSpec | None = None, link: str = "", card_ref: str = "",
                    claimed_by_viewer: bool = False) -> Card:
    """The new-lead card: who, how to reach them (masked until claimed), why it matters now."""
    lang = normalize_lang(lang)
    fields, badges, overdue = _lead_fields(view, now, lang)
    return Card(
        kind="lead",
        title=t("lead.title", lang, name=_name(view.customer_name, lang)),
        subtitle=_joined(view.company, _phone(view.phone, claimed_by_viewer)),
        fields=tuple(fields),
        badges=tuple(badges),
        buttons=make_buttons(buttons, lang),
        link=link,
        card_ref=card_ref,
        state=_card_state(view.state),
        footer=t("footer.lead", lang, lead_id=view.lead_id),
        tone=_tone(alert=overdue or view.silent_flag, warning=view.duplicate_of is not None),
        lang=lang,
    )


def build_claimed_card(view: LeadCardView, *, claimer_name: str, now: datetime,
                       lang: str = "zh", buttons: ButtonSpec | None = None, link: str = "",
                       card_ref: str = "", claimed_by_viewer: bool = False) -> Card:
    """What a lead card turns into once claimed: "已被 X 认领" for others, "你已认领" for X."""
    lang = normalize_lang(lang)
    claimed = replace(view, state="claimed", owner_name=claimer_name)
    fields, badges, _ = _lead_fields(claimed, now, lang, show_owner=not claimed_by_viewer)
    name = _name(view.customer_name, lang)
    if claimed_by_viewer:
        title = t("claimed.self", lang, name=name)
        subtitle = _joined(view.company, _phone(view.phone, True))
    else:
        title = t("claimed.by", lang, name=claimer_name)
        subtitle = _joined(name, view.company, mask_phone(view.phone))
    return Card(
        kind="claimed",
        title=title,
        subtitle=subtitle,
        fields=tuple(fields),
        badges=tuple(badges),
        buttons=make_buttons(buttons, lang),
        link=link,
        card_ref=card_ref,
        state="claimed",
        footer=t("footer.lead", lang, lead_id=view.lead_id),
        tone="alert" if view.silent_flag else "good",
        lang=lang,
    )


def build_pool_card(view: LeadCardView, *, now: datetime, lang: str = "zh",
                    buttons: ButtonSpec | None = None, link: str = "",
                    card_ref: str = "") -> Card:
    """An unclaimed lead offered to a whole team. Pool cards go to groups: phone always masked."""
    lang = normalize_lang(lang)
    fields, badges, overdue = _lead_fields(view, now, lang)
    return Card(
        kind="pool",
        title=t("pool.title", lang, name=_name(view.customer_name, lang)),
        subtitle=_joined(view.company, mask_phone(view.phone), t("pool.subtitle", lang)),
        fields=tuple(fields),
        badges=(t("badge.pool", lang), *badges),
        buttons=make_buttons(buttons, lang),
        link=link,
        card_ref=card_ref,
        state=_card_state(view.state),
        footer=t("footer.lead", lang, lead_id=view.lead_id),
        tone=_tone(alert=overdue or view.silent_flag, warning=True),
        lang=lang,
    )


def build_reminder_card(view: LeadCardView, *, now: datetime, lang: str = "zh",
                        buttons: ButtonSpec | None = None, link: str = "", card_ref: str = "",
                        claimed_by_viewer: bool = False, outcome: str = "", state: str = "") -> Card:
    """A nudge to the assigned rep before the first-touch deadline ("3 分钟内跟进").

    ``outcome`` (with ``state``) redraws a reminder the lead has moved past: it stays a reminder
    and says what happened instead ("你已认领", "已改派给 钱伟"), without buttons."""
    lang = normalize_lang(lang)
    if outcome:
        view = replace(view, state=state or "closed")  # no countdown on a settled reminder
    fields, badges, overdue = _lead_fields(view, now, lang)
    name = _name(view.customer_name, lang)
    due = ""
    if outcome:
        due = outcome
    elif view.sla_due_at is not None:
        if sla_seconds_left(view.sla_due_at, now) > 0:
            due = t("sla.due_within", lang, minutes=minutes_left(view.sla_due_at, now))
        else:
            due = sla_countdown(view.sla_due_at, now, lang)[0]
    return Card(
        kind="reminder",
        # Moved past: no longer "still waiting for you" beside what happened to it.
        title=t("reminder.title_done" if outcome else "reminder.title", lang, name=name),
        subtitle=_joined(due, view.company, _phone(view.phone, claimed_by_viewer)),
        fields=tuple(fields),
        badges=tuple(badges),
        buttons=() if outcome else make_buttons(buttons, lang),
        link=link,
        card_ref=card_ref,
        state=(state or "closed") if outcome else _card_state(view.state),
        footer=t("footer.lead", lang, lead_id=view.lead_id),
        tone=_tone(good=True) if outcome else _tone(alert=overdue or view.silent_flag, warning=True),
        lang=lang,
    )


def build_escalation_card(view: LeadCardView, *, now: datetime, lang: str = "zh",
                          level: int = 1, buttons: ButtonSpec | None = None, link: str = "",
                          card_ref: str = "", outcome: str = "", state: str = "",
                          owner_now: str | None = None) -> Card:
    """For a manager (or the managers' group): a lead nobody touched in time. Phone masked.

    ``view.sla_due_at`` is the deadline that was missed; the title says "超时未跟进" only once it
    has passed (never beside a countdown that is still running). ``outcome`` (with ``state``)
    redraws an escalation the lead has moved past: it stays an escalation and says what
    happened ("已改派给 钱伟", "已被 李强 认领"), without buttons; ``owner_now`` (the lead's owner
    since, when it changed) heads its fields, the escalated owner then shown as the former one."""
    lang = normalize_lang(lang)
    owner = view.owner_name or t("value.none", lang)
    left = sla_seconds_left(view.sla_due_at, now) if view.sla_due_at is not None else None
    overdue_now = left is not None and left <= 0
    shown = replace(view, state=state or "closed") if outcome else view
    fields, badges, _ = _lead_fields(shown, now, lang, show_owner=False)
    if outcome and owner_now is not None and owner_now != view.owner_name:
        fields[:0] = [Field(t("field.owner", lang), owner_now or t("value.none", lang)),
                      Field(t("field.from", lang), owner)]
    else:
        fields.insert(0, Field(t("field.owner", lang), owner))
    subtitle = t("escalation.subtitle_plain", lang, owner=owner)
    if overdue_now and left is not None and -left < 60:
        subtitle = _joined(owner, t("sla.just_overdue", lang))  # never "已超时 0 分钟"
    elif overdue_now and left is not None:
        overdue = format_duration(-left // 60 * 60, lang)
        subtitle = t("escalation.subtitle", lang, owner=owner, overdue=overdue)
    if outcome:
        subtitle = _joined(outcome, subtitle)
    fields.append(Field(t("field.level", lang), t("escalation.level", lang, level=level)))
    name = _name(view.customer_name, lang)
    return Card(
        kind="escalation",
        title=t("escalation.title" if overdue_now or left is None else "escalation.title_due", lang, name=name),
        subtitle=subtitle,
        fields=tuple(fields),
        badges=(t("badge.escalated", lang), *badges),
        buttons=() if outcome else make_buttons(buttons, lang),
        link=link,
        card_ref=card_ref,
        state=(state or "closed") if outcome else _card_state(view.state),
        footer=t("footer.lead", lang, lead_id=view.lead_id),
        tone="good" if outcome else "alert",
        lang=lang,
    )


def build_reassigned_card(view: LeadCardView, *, from_name: str, to_name: str,
                          now: datetime, lang: str = "zh", reason: str = "",
                          buttons: ButtonSpec | None = None, link: str = "",
                          card_ref: str = "", claimed_by_viewer: bool = False,
                          state: str = "open") -> Card:
    """Tells the new owner (state "open", with claim buttons) or the old one ("reassigned")."""
    lang = normalize_lang(lang)
    fields, badges, overdue = _lead_fields(view, now, lang, show_owner=False)
    head = [Field(t("field.from", lang), from_name or t("value.none", lang)),
            Field(t("field.to", lang), to_name)]
    if reason:
        head.append(Field(t("field.reason", lang), lookup("reason", reason, lang)))
    return Card(
        kind="reassigned",
        title=t("reassign.title", lang, name=_name(view.customer_name, lang)),
        subtitle=t("reassign.body", lang, from_name=from_name or t("value.none", lang),
                   to_name=to_name),
        fields=tuple(head + fields),
        badges=tuple(badges),
        buttons=make_buttons(buttons, lang),
        link=link,
        card_ref=card_ref,
        state=state,
        footer=t("footer.lead", lang, lead_id=view.lead_id),
        tone=_tone(alert=overdue, warning=True),
        lang=lang,
    )


# --- identity cards -------------------------------------------------------------------------

def _brief(c: CustomerBrief, lang: str) -> str:
    return _joined(_name(c.name, lang), c.company, mask_phone(c.phone))


def build_duplicate_card(view: DuplicateCardView, *, lang: str = "zh",
                         buttons: ButtonSpec | None = None, link: str = "",
                         card_ref: str = "") -> Card:
    """"可能与 X 重复 — 合并?" with merge / distinct buttons. Phones masked on both sides:
    the existing customer may belong to someone else."""
    lang = normalize_lang(lang)
    existing, incoming = view.existing, view.incoming
    fields = [
        Field(t("field.incoming", lang), _brief(incoming, lang)),
        Field(t("field.existing", lang), _brief(existing, lang)),
        Field(t("field.owner", lang), existing.owner_name or t("value.none", lang)),
    ]
    if view.reasons:
        reasons = t("sep.list", lang).join(lookup("match", r, lang) for r in view.reasons)
        fields.append(Field(t("field.match", lang), reasons))
    if view.score is not None:
        fields.append(Field(t("field.score", lang), format_percent(view.score)))
    return Card(
        kind="duplicate",
        title=t("duplicate.question", lang, name=_name(existing.name, lang)),
        subtitle=_joined(_name(incoming.name, lang), incoming.company),
        fields=tuple(fields),
        badges=(t("badge.duplicate", lang),),
        buttons=make_buttons(buttons, lang),
        link=link,
        card_ref=card_ref,
        footer=t("footer.customer", lang, customer_id=existing.customer_id),
        tone="warning",
        lang=lang,
    )


def build_friend_match_card(view: FriendMatchView, *, now: datetime, lang: str = "zh",
                            buttons: ButtonSpec | None = None, link: str = "",
                            card_ref: str = "") -> Card:
    """A new WeCom friend is a customer we already know: owner, stage, last activity."""
    lang = normalize_lang(lang)
    other_owner = bool(view.owner_name) and not view.owned_by_viewer
    if view.owned_by_viewer:
        note = t("friend.owned_by_you", lang)
    elif view.owner_name:
        note = t("friend.owned_by_other", lang, owner=view.owner_name)
    else:
        note = t("friend.no_owner", lang)
    fields = [Field(t("field.note", lang), note, alert=other_owner),
              Field(t("field.owner", lang), view.owner_name or t("value.none", lang))]
    if view.stage:
        fields.append(Field(t("field.stage", lang), stage_name(view.stage, lang)))
    last = (format_ago(view.last_activity_at, now, lang) if view.last_activity_at
            else t("friend.no_activity", lang))
    fields.append(Field(t("field.last_activity", lang), last))
    if view.open_leads:
        fields.append(Field(t("field.open_leads", lang), str(view.open_leads)))
    if view.match_reason:
        fields.append(Field(t("field.match", lang), lookup("match", view.match_reason, lang)))
    if view.contact_name:
        fields.append(Field(t("field.contact", lang), view.contact_name))
    return Card(
        kind="friend_match",
        title=t("friend.title", lang, name=_name(view.customer_name, lang)),
        subtitle=_joined(view.company, _phone(view.phone, view.owned_by_viewer)),
        fields=tuple(fields),
        badges=(t("badge.other_owner", lang),) if other_owner else (),
        buttons=make_buttons(buttons, lang),
        link=link,
        card_ref=card_ref,
        state="info",
        footer=t("footer.customer", lang, customer_id=view.customer_id),
        tone=_tone(warning=other_owner),
        lang=lang,
    )


# --- roll-ups and notices -------------------------------------------------------------------

def build_rollup_card(items: Sequence[RollupItem | LeadCardView], n: int | None = None, *,
                      lang: str = "zh", buttons: ButtonSpec | None = None, link: str = "",
                      card_ref: str = "") -> Card:
    """One card instead of a burst: WeCom silently drops more than 30 messages a minute.

    ``n`` is the total (it may exceed ``len(items)``); the first few items are listed.
    No phone numbers: a digest is a summary, the H5 link has the details.
    """
    lang = normalize_lang(lang)
    total = len(items) if n is None else max(n, len(items))
    shown = list(items)[:ROLLUP_VISIBLE_ITEMS]
    fields = [Field(_name(i.customer_name, lang),
                    _joined(i.company, lookup("channel", i.source_channel, lang)
                            if i.source_channel else "") or t("value.unknown", lang))
              for i in shown]
    rest = total - len(shown)
    return Card(
        kind="rollup",
        title=t("rollup.title", lang, n=total),
        subtitle=t("rollup.subtitle", lang),
        fields=tuple(fields),
        buttons=make_buttons(buttons, lang),
        link=link,
        card_ref=card_ref,
        state="info",
        footer=t("rollup.more", lang, n=rest) if rest > 0 else "",
        tone="normal",
        lang=lang,
    )


def storm_title(team: str, n: int, lang: str = "zh") -> str:
    """"华东团队 37 条线索超时" (a team's storm), or "37 条线索超时" across teams."""
    lang = normalize_lang(lang)
    if not team:
        return t("storm.title_plain", lang, n=n)
    label = team if lang == "zh" and team.endswith(("团队", "组", "部")) else t("storm.team", lang, team=team)
    return t("storm.title", lang, team=label, n=n)


def build_storm_card(lines: Sequence[StormLine], n: int, *, team: str, now: datetime, lang: str = "zh",
                     reassign_key: str = "", link: str = "", card_ref: str = "") -> Card:
    """An escalation storm rolled up for one manager: how many, the ones that waited longest,
    one tap to reassign the batch (``reassign_key``, signed by the caller for this digest and
    this manager) and the full list (``link``, the H5 page). No phone numbers."""
    lang = normalize_lang(lang)
    worst = [f"{i}. " + _joined(line.summary, format_ago(line.since, now, lang) if line.since else "")
             for i, line in enumerate(list(lines)[:ROLLUP_VISIBLE_ITEMS], 1)]
    rest = n - len(worst)
    buttons: list[Button] = []
    if reassign_key:
        buttons.append(Button(key=reassign_key, text=t("storm.reassign_all", lang), style="primary"))
    if link:
        buttons.append(Button(key="", text=t("storm.full_list", lang), url=link))
    fields = [Field(t("field.storm_count", lang), t("storm.count", lang, n=n), alert=True)]
    if team:
        fields.insert(0, Field(t("field.team", lang), team))
    return Card(
        kind="storm",
        title=storm_title(team, n, lang),
        subtitle=t("storm.subtitle", lang),
        fields=tuple(fields),
        badges=(t("badge.escalated", lang),),
        buttons=tuple(buttons),
        link=link,
        card_ref=card_ref,
        body="\n".join([t("storm.worst", lang), *worst]) if worst else "",
        footer=t("digest.more", lang, n=rest) if rest > 0 else "",
        tone="alert",
        lang=lang,
    )


def build_storm_result_card(outcomes: Sequence[StormOutcome], *, lang: str = "zh", link: str = "",
                            card_ref: str = "") -> Card:
    """The storm digest after its batch reassign: how many moved and, for each lead skipped
    because it was claimed or handled meanwhile, why. No buttons left; the list stays a tap away."""
    lang = normalize_lang(lang)
    moved = [o for o in outcomes if o.outcome != "skipped"]
    skipped = [o for o in outcomes if o.outcome == "skipped"]
    # The skipped first: they are what the manager may still have to look at.
    lines = [t("storm.skipped_line", lang, name=o.name, why=o.why) for o in skipped]
    for o in moved:
        key = {"moved": "storm.moved_line", "pooled": "storm.pooled_line"}.get(o.outcome, "storm.deferred_line")
        lines.append(t(key, lang, name=o.name, to=o.to_name))
    return Card(
        kind="storm",
        title=t("storm.result_title", lang, moved=len(moved), skipped=len(skipped)),
        body="\n".join(lines),
        link=link,
        card_ref=card_ref,
        state="reassigned",
        tone="good" if not skipped else "warning",
        lang=lang,
    )


def build_notice_card(title: str, body: str = "", *, lang: str = "zh",
                      fields: Mapping[str, str] | Iterable[Field] = (), link: str = "",
                      card_ref: str = "", buttons: ButtonSpec | None = None,
                      tone: str = "normal", kind: str = "notice", footer: str = "") -> Card:
    """Plain information: results of a tap, errors, help, search results."""
    lang = normalize_lang(lang)
    if isinstance(fields, Mapping):
        field_tuple = tuple(Field(k, v) for k, v in fields.items())
    else:
        field_tuple = tuple(fields)
    return Card(kind=kind, title=title, body=body, fields=field_tuple,
                buttons=make_buttons(buttons, lang), link=link, card_ref=card_ref,
                state="info", footer=footer, tone=tone, lang=lang)
