"""The roll-up digest: many messages to one recipient become one ("你有 12 条新线索: …").

bot/app.py may inject a renderer that builds a digest card (bot.cards); this default one
produces plain text, which every client shows. Either way the worker adds the full list of
rolled leads and keys to the payload, so the digest references every message it replaced.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from bot.cards.builders import storm_title
from leadbot.i18n import t
from store.outbox import OutboxEntry, RepContact

# (channel, recipient, rolled entries, rep or None) -> (kind, payload); payload must carry "text".
DigestRenderer = Callable[[str, str, Sequence[OutboxEntry], "RepContact | None"], tuple[str, dict[str, Any]]]

SHOWN = 10


def summary_of(entry: OutboxEntry, lang: str = "zh") -> str:
    p = entry.payload
    for key in ("summary", "title"):
        if isinstance(p.get(key), str) and p[key].strip():
            return p[key].strip().splitlines()[0][:80]
    if isinstance(p.get("text"), str) and p["text"].strip():
        return p["text"].strip().splitlines()[0][:80]
    if entry.lead_id is not None:
        return t("digest.lead", lang, lead_id=entry.lead_id)
    return entry.idempotency_key[:80]


def make_text_digest(lang: str = "zh") -> DigestRenderer:
    def render(channel: str, recipient: str, entries: Sequence[OutboxEntry],
               rep: RepContact | None) -> tuple[str, dict[str, Any]]:
        n = len(entries)
        lines = [f"{i}. {summary_of(e, lang)}" for i, e in enumerate(entries[:SHOWN], 1)]
        title = t("rollup.title", lang, n=n)
        more = t("digest.more", lang, n=n - SHOWN) if n > SHOWN else ""
        body = "\n".join([title + ":", *lines] + ([more] if more else []))
        return "text", {"title": title, "text": body, "summary": title}

    return render


# An escalation storm's digest: (channel, recipient, rolled escalations, the digest's own outbox
# key) -> (kind, payload). The key lets a renderer bind actions to this digest (bot/actions/storm.py
# signs a batch reassign and a full-list link on it).
StormRenderer = Callable[[str, str, Sequence[OutboxEntry], str], tuple[str, dict[str, Any]]]

WORST_SHOWN = 5


def storm_title_of(entries: Sequence[OutboxEntry], lang: str) -> str:
    """"华东团队 37 条线索超时" (the team named when every escalation is of one team)."""
    teams = {str(e.payload.get("team") or "") for e in entries}
    return storm_title(teams.pop() if len(teams) == 1 else "", len(entries), lang)


def longest_waiting(entries: Sequence[OutboxEntry]) -> list[OutboxEntry]:
    """Escalations ordered by how long their lead has waited (assignment time, ``since``, from
    the ladder's payload), oldest first."""
    return sorted(entries, key=lambda e: (str(e.payload.get("since") or e.created_at.isoformat()), e.id))


def make_storm_digest(lang: str = "zh") -> StormRenderer:
    """"华东团队 37 条线索超时": the manager reads one message instead of 37, the leads that have
    waited longest named first, with the link each escalation carried."""

    def render(channel: str, recipient: str, entries: Sequence[OutboxEntry], key: str = "") -> tuple[str, dict[str, Any]]:
        n = len(entries)
        title = storm_title_of(entries, lang)
        head = t("storm.worst", lang)
        more = t("digest.more", lang, n=n - WORST_SHOWN) if n > WORST_SHOWN else ""
        lines = []
        for i, e in enumerate(longest_waiting(entries)[:WORST_SHOWN], 1):
            link = e.payload.get("link")
            lines.append(f"{i}. {summary_of(e, lang)}" + (f" {link}" if isinstance(link, str) and link else ""))
        body = "\n".join([title, head, *lines] + ([more] if more else []))
        payload: dict[str, Any] = {"title": title, "summary": title, "text": body}
        if channel.endswith("_robot"):
            payload["markdown"] = "\n".join([f"### {title}", head, *(f"- {line[3:]}" for line in lines)]
                                            + ([more] if more else []))
            return "robot", payload
        return "text", payload

    return render
