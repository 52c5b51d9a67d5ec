"""Which buttons a recipient gets for a lead in its current state, each with its own signed key,
and the H5 link that offers the same buttons to clients that cannot show cards."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Mapping

from bot.actions.tokens import ActionSigner
from store import dto
from store.lead_status import WORKING

BUTTON_TTL = timedelta(days=3)  # WeCom keeps response_code 72 h; a button older than that is dead anyway
LINK_TTL = timedelta(days=3)
# Token argument of a reassign from an escalation (its card, or a storm digest's list): the owner
# when the lead escalated (0: none). The tap acts only while the lead is still theirs, unclaimed:
# a claim that lands after the escalation wins over a manager's older card.
ESCALATED_OWNER = "e"


def actions_for(lead: dto.Lead, rep: dto.Rep, *, pool: bool = False) -> tuple[str, ...]:
    """The buttons that make sense for this rep on this lead right now."""
    if lead.status not in WORKING:
        return ()
    if lead.claimed_at is None:
        if pool or lead.owner_id is None:
            return ("claim",)
        if lead.owner_id == rep.id:
            return ("claim", "pass")
        return ()
    if lead.owner_id == rep.id:
        return ("advance",)
    return ()


class ButtonFactory:
    def __init__(self, signer: ActionSigner, public_url: str) -> None:
        self.signer = signer
        self.public_url = public_url.rstrip("/")

    def keys(self, lead: dto.Lead, audience: str, actions: tuple[str, ...], now: datetime,
             args: Mapping[str, Mapping[str, object]] | None = None) -> dict[str, str]:
        """{action: "<action>:<token>"}; `args` adds per-action claims (e.g. advance "from")."""
        extra = dict(args or {})
        if "advance" in actions and "advance" not in extra:
            extra["advance"] = {"from": lead.stage or ""}
        return {a: self.signer.key(a, lead.id, audience, now + BUTTON_TTL, extra.get(a)) for a in actions}

    def escalation_keys(self, lead: dto.Lead, audience: str, owner_id: int | None, now: datetime) -> dict[str, str]:
        """改派 on an escalation card, bound to the owner it escalated from."""
        return self.keys(lead, audience, ("reassign",), now, {"reassign": {ESCALATED_OWNER: owner_id or 0}})

    def link(self, lead_id: int, audience: str, now: datetime, args: Mapping[str, object] | None = None) -> str:
        """The H5 page of a lead; ``args`` makes it another page of the same recipient (a storm
        digest's full list, bot/actions/storm.py)."""
        token = self.signer.sign("open", lead_id, audience, now + LINK_TTL, args)
        return f"{self.public_url}/a/{token}"
