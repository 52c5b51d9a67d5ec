"""The roll-up digest: many messages to one recipient become one ("你有 12 条新线索: …").

bot/app.py may inject a renderer that builds a digest card (bot.cards); this default one
produces plain text, which every client shows. Either way the worker adds the full list of
rolled leads and keys to the payload, so the digest references every message it replaced.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from bot.cards.i18n import t
from crm_bridge.outbox import OutboxEntry, RepContact

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


default_digest = make_text_digest("zh")
