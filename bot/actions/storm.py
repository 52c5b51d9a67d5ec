"""Escalation storms a manager can act on.

The delivery worker folds a storm of escalations to one manager into one digest
(notifications/worker.py); this module draws that digest as a card on WeCom and DingTalk (and its
plain-text fallback, whose link is the full list): "华东团队 37 条线索超时", the leads that waited
longest, 全部改派 (a signed, expiring key bound to the manager and to this digest) and 查看全部
(the H5 list: masked phones, each lead's state now, a reassign per lead).

The digest is named by its outbox key, which the tokens carry: on a tap the batch is read back from
the digest row (which leads, and whose each was when it escalated), and every lead is judged as it
is now. A lead claimed, moved or closed since is skipped and said so; the reassignment itself is
conditional on the lead's row (crm_bridge Router.reassign_escalated), so a claim that lands in
between still wins.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Sequence

from bot.actions.buttons import BUTTON_TTL
from bot.cards.builders import build_storm_card
from leadbot.i18n import t
from bot.cards.views import StormLine
from store import dto
from store.lead_status import CLOSED, UNCLAIMED
from store.outbox import OutboxEntry
from notifications.digest import StormRenderer, longest_waiting, make_storm_digest, summary_of
from notifications.sender import dedupe_id

if TYPE_CHECKING:
    from bot.context import AppContext

# Token argument naming the storm digest (its outbox key): on 全部改派 and on the list's link.
BATCH = "b"
CARD_CHANNELS = ("wecom", "dingtalk")


def _since(entry: OutboxEntry) -> datetime | None:
    raw = entry.payload.get("since")
    try:
        at = datetime.fromisoformat(str(raw)) if raw else None
    except ValueError:
        return None
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at


def _owner_when_escalated(entry: OutboxEntry) -> int | None:
    meta = entry.payload.get("meta")
    owner = meta.get("owner_id") if isinstance(meta, dict) else None
    return int(owner) if isinstance(owner, int) else None


def lead_name(lead: dto.Lead) -> str:
    return " · ".join(x for x in (lead.name, lead.company) if x) or f"#{lead.id}"


class StormDigests:
    def __init__(self, ctx: "AppContext") -> None:
        self.ctx = ctx
        self.plain: StormRenderer = make_storm_digest(ctx.lang)

    @property
    def lang(self) -> str:
        return self.ctx.lang

    # ---- the digest (called by the delivery worker) ------------------------------------------

    def render(self, channel: str, recipient: str, entries: Sequence[OutboxEntry],
               key: str) -> tuple[str, dict[str, Any]]:
        """The storm digest for one manager as a card (its text fallback in ``text``); a group
        robot, or a digest of several recipients' rows, stays the plain roll-up: nobody there
        to bind a token to."""
        flow = self.ctx.services.flow
        rep_ids = {e.rep_id for e in entries}
        leads = [e.lead_id for e in entries if e.lead_id is not None]
        if channel not in CARD_CHANNELS or flow is None or len(rep_ids) != 1 or None in rep_ids or not leads:
            return self.plain(channel, recipient, entries, key)
        rep_id = next(iter(rep_ids))
        now = self.ctx.clock.now()
        audience = f"rep:{rep_id}"
        first = min(leads)  # a token names a lead; the batch itself is read from the digest row
        ordered = longest_waiting(entries)
        teams = {str(e.payload.get("team") or "") for e in entries}
        card = build_storm_card(
            [StormLine(e.lead_id if e.lead_id is not None else "", summary_of(e, self.lang), _since(e))
             for e in ordered],
            len(entries), team=teams.pop() if len(teams) == 1 else "", now=now, lang=self.lang,
            reassign_key=flow.buttons.signer.key("reassign", first, audience, now + BUTTON_TTL, {BATCH: key}),
            link=flow.buttons.link(first, audience, now, args={BATCH: key}), card_ref=dedupe_id(key))
        payload = flow.payload_for(card, channel, recipient)
        payload.update(title=card.title, summary=card.title,
                       escalated=[[e.lead_id, _owner_when_escalated(e)] for e in ordered if e.lead_id is not None])
        return "card", payload

    # ---- reading a digest back ---------------------------------------------------------------

    async def batch(self, key: str, rep: dto.Rep) -> list[tuple[int, int | None]] | None:
        """(lead id, its owner when it escalated) for every lead of the storm digest ``key``,
        longest waiting first; None unless that digest exists and was this rep's."""
        outbox = self.ctx.services.outbox
        row = await outbox.get_by_key(key) if outbox is not None and key.startswith("storm:") else None
        if row is None or row.rep_id != rep.id or not row.payload.get("storm_digest"):
            return None
        pairs = row.payload.get("escalated")
        if not isinstance(pairs, list):
            pairs = [[lead_id, None] for lead_id in row.payload.get("lead_ids") or []]
        return [(int(p[0]), int(p[1]) if isinstance(p[1], int) else None) for p in pairs
                if isinstance(p, list) and len(p) == 2 and isinstance(p[0], int)]

    async def why_not(self, lead: dto.Lead | None, owner_id: int | None) -> str | None:
        """Why an escalated lead needs no reassigning now (in the catalogue's words), or None
        while it is still with the owner it escalated from, unclaimed."""
        if lead is None:
            return t("storm.why.gone", self.lang)
        if lead.status in CLOSED:
            return t("storm.why.closed", self.lang)
        if lead.claimed_at is not None:
            return t("storm.why.claimed", self.lang, name=await self._name_of(lead.owner_id))
        if lead.owner_id != owner_id:
            if lead.owner_id is None:
                return t("storm.why.pool", self.lang)
            return t("storm.why.moved", self.lang, name=await self._name_of(lead.owner_id))
        if lead.status not in UNCLAIMED:
            return t("storm.why.pool", self.lang) if lead.status == "pool" else t("storm.why.closed", self.lang)
        return None

    async def _name_of(self, rep_id: int | None) -> str:
        rep = await self.ctx.store.get_rep(rep_id) if rep_id else None
        return rep.name if rep is not None else "?"

    def list_link(self, key: str, lead_id: int, rep_id: int) -> str:
        flow = self.ctx.services.flow
        return flow.buttons.link(lead_id, f"rep:{rep_id}", self.ctx.clock.now(), args={BATCH: key})
