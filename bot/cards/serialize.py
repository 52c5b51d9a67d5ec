"""Card <-> JSON-safe dict, so an outbox row can carry the neutral card and the delivery worker
renders it for whichever channel and profile it finally goes out on (card, text, fallback)."""

from __future__ import annotations

from typing import Any, Mapping

from bot.cards.model import Button, Card, Field


def card_to_dict(card: Card) -> dict[str, Any]:
    return {
        "kind": card.kind, "title": card.title, "subtitle": card.subtitle,
        "fields": [[f.label, f.value, f.alert] for f in card.fields],
        "badges": list(card.badges),
        "buttons": [[b.key, b.text, b.style, b.url] for b in card.buttons],
        "link": card.link, "card_ref": card.card_ref, "state": card.state, "footer": card.footer,
        "body": card.body, "tone": card.tone, "lang": card.lang,
    }


def card_from_dict(data: Mapping[str, Any]) -> Card:
    return Card(
        kind=data["kind"], title=data["title"], subtitle=data.get("subtitle", ""),
        fields=tuple(Field(label=f[0], value=f[1], alert=bool(f[2])) for f in data.get("fields", ())),
        badges=tuple(data.get("badges", ())),
        buttons=tuple(Button(key=b[0], text=b[1], style=b[2], url=b[3]) for b in data.get("buttons", ())),
        link=data.get("link", ""), card_ref=data.get("card_ref", ""), state=data.get("state", "open"),
        footer=data.get("footer", ""), body=data.get("body", ""), tone=data.get("tone", "normal"),
        lang=data.get("lang", "zh"))
