"""Card -> plain text: the fallback for clients that cannot show cards.

Written for the lock screen: the first line says what happened and who it is about
("新线索：王小明 · 华为 · 138****5678"), the second is the H5 link where every button of the card
can be used, and the details follow. WeCom's text limit is 2048 bytes; a cut drops detail lines
first and never splits a character, so the headline and the link always survive.
"""

from __future__ import annotations

from leadbot.i18n import normalize_lang, t
from bot.cards.model import Card
from bot.cards.text_limits import fit_lines, one_line, truncate_chars, truncate_utf8

TEXT_MAX_BYTES = 2048
# Keeps room for the link line even when a title is absurdly long.
_HEADLINE_MAX_BYTES = 512
_LINE_CHARS = 300


def headline(card: Card) -> str:
    """Title and subtitle on one line: what happened, to whom."""
    return one_line(" · ".join(p for p in (card.title, card.subtitle) if p))


def action_line(card: Card, lang: str) -> str:
    """'认领 / 放弃 → https://…' when the card has actions, 'Details → https://…' otherwise."""
    if not card.link:
        return ""
    actions = [b.text for b in card.callback_buttons]
    if actions:
        return t("text.act_link", lang, actions=" / ".join(actions), url=card.link)
    return t("text.open_link", lang, url=card.link)


def detail_lines(card: Card, lang: str) -> list[str]:
    """Badges, fields, body and footer, one per line, each cut to a sane length so that one
    oversized value cannot push every other line out of the 2048 bytes."""
    sep = t("sep.label", lang)
    lines = []
    if card.badges:
        lines.append(t("badges", card.lang, badges=" · ".join(card.badges)))
    lines += [f"{one_line(f.label)}{sep}{one_line(f.value)}" for f in card.fields if f.value]
    if card.body:
        lines += card.body.splitlines()
    if card.footer:
        lines.append(one_line(card.footer))
    return [truncate_chars(line, _LINE_CHARS) for line in lines]


def render_text(card: Card, lang: str | None = None, *, max_bytes: int = TEXT_MAX_BYTES) -> str:
    """Plain text of at most ``max_bytes`` UTF-8 bytes (default: WeCom's 2048).

    ``lang`` defaults to the card's own language; it only affects the words this renderer adds.
    """
    lang = normalize_lang(lang or card.lang)
    head = [truncate_utf8(headline(card), _HEADLINE_MAX_BYTES)]
    link = action_line(card, lang)
    if link:
        head.append(link)
    return fit_lines(head, detail_lines(card, lang), (), limit=max_bytes)
