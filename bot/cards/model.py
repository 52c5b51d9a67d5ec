"""The neutral card: what a builder produces and every renderer consumes.

A card knows nothing about WeCom or DingTalk. The rules enforced here are the ones that hold on
both platforms and that a renderer cannot repair after the fact without breaking something:
a button key is a signed token (cutting it would break the signature) and a card_ref is stored
by the caller to find the card again (rewriting it would lose the card).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# The action before the colon of a button key; handlers and tests outside the repo rely on it.
ACTIONS: tuple[str, ...] = (
    "claim", "advance", "merge", "distinct", "reassign", "snooze", "pass", "undo", "reinstate",
)
BUTTON_STYLES: tuple[str, ...] = ("primary", "default", "danger")
# Every state needs a label in the catalogue: WeCom shows it on the greyed-out button.
CARD_STATES: tuple[str, ...] = (
    "open", "claimed", "closed", "merged", "distinct", "reassigned", "passed", "snoozed",
    "advanced", "expired", "undone", "info", "reinstated",
)
# normal: plain; good: done/green; warning: needs a look; alert: red (overdue, silent customer).
TONES: tuple[str, ...] = ("normal", "good", "warning", "alert")

# WeCom: a button key comes back as EventKey and may be at most 1024 bytes. Checked here rather
# than in the WeCom renderer because the same key travels through DingTalk's 1 KB param values.
MAX_BUTTON_KEY_BYTES = 1024
# WeCom task_id: [0-9A-Za-z_-@], at most 128 bytes. DingTalk's outTrackId accepts this too.
MAX_CARD_REF_BYTES = 128
_CARD_REF_CHARS = re.compile(r"[0-9A-Za-z_\-@]*")
_CARD_REF_BAD_CHAR = re.compile(r"[^0-9A-Za-z_\-@]")
# WeCom textcard url and template card urls: at most 2048 bytes.
MAX_URL_BYTES = 2048


@dataclass(frozen=True, slots=True)
class Field:
    """One label/value line. ``alert`` marks a value that must stand out (overdue, conflict)."""

    label: str
    value: str
    alert: bool = False


@dataclass(frozen=True, slots=True)
class Button:
    """A button. With ``url`` it opens a page; without, a tap calls back with ``key``.

    ``key`` is ``<action>:<signed token>``, made by the caller; the card layer never signs.
    """

    key: str
    text: str
    style: str = "default"
    url: str = ""

    def __post_init__(self) -> None:
        if not self.text:
            raise ValueError("Button.text must not be empty")
        if self.style not in BUTTON_STYLES:
            raise ValueError(f"Button.style must be one of {BUTTON_STYLES}, not {self.style!r}")
        if self.url:
            _check_url(self.url, "Button.url")
        if not self.key and not self.url:
            raise ValueError("a callback Button needs a key")
        if self.key:
            action, sep, token = self.key.partition(":")
            if not sep or action not in ACTIONS or not token:
                raise ValueError(
                    f"Button.key must be '<action>:<token>' with action in {ACTIONS}")
            if len(self.key.encode("utf-8")) > MAX_BUTTON_KEY_BYTES:
                raise ValueError(f"Button.key is longer than {MAX_BUTTON_KEY_BYTES} bytes")

    @property
    def action(self) -> str:
        return self.key.partition(":")[0]

    @property
    def is_callback(self) -> bool:
        return not self.url


@dataclass(frozen=True, slots=True)
class Card:
    """A platform-neutral card.

    ``subtitle`` is one short line under the title; ``body`` is longer free text (help, results)
    that renderers place where a platform allows more room.
    ``link`` is the H5 page behind the card (the text fallback and work notices point there).
    ``card_ref`` is WeCom's task_id / DingTalk's outTrackId: unique per delivered copy, because
    WeCom refuses a task_id it has seen before. Build it with :func:`make_card_ref`.
    """

    kind: str
    title: str
    subtitle: str = ""
    fields: tuple[Field, ...] = ()
    badges: tuple[str, ...] = ()
    buttons: tuple[Button, ...] = ()
    link: str = ""
    card_ref: str = ""
    state: str = "open"
    footer: str = ""
    body: str = ""
    tone: str = "normal"
    lang: str = "zh"

    def __post_init__(self) -> None:
        if not self.kind:
            raise ValueError("Card.kind must not be empty")
        if self.state not in CARD_STATES:
            raise ValueError(f"Card.state must be one of {CARD_STATES}, not {self.state!r}")
        if self.tone not in TONES:
            raise ValueError(f"Card.tone must be one of {TONES}, not {self.tone!r}")
        if self.lang not in ("zh", "en"):
            raise ValueError(f"Card.lang must be 'zh' or 'en', not {self.lang!r}")
        if self.link:
            _check_url(self.link, "Card.link")
        check_card_ref(self.card_ref)
        # Tuples, not lists: a frozen card must not change under a renderer's feet.
        for name in ("fields", "badges", "buttons"):
            if not isinstance(getattr(self, name), tuple):
                raise TypeError(f"Card.{name} must be a tuple")

    @property
    def callback_buttons(self) -> tuple[Button, ...]:
        return tuple(b for b in self.buttons if b.is_callback)

    @property
    def link_buttons(self) -> tuple[Button, ...]:
        return tuple(b for b in self.buttons if not b.is_callback)


def headline(card: Card, *, with_fields: bool = False) -> str:
    """A digest of what a card shows: two renders with the same digest look the same to the
    reader. Without fields it covers the headline only (kind, title, subtitle, state, which
    buttons, the badges at its top): a change of a field alone (a stage name) then does not
    count, a badge does (a "possible duplicate" the rep has merged must not stay asking)."""
    parts: list[str] = [card.kind, card.title, card.subtitle, card.state, *(b.action for b in card.buttons),
                        *card.badges]
    if with_fields:
        parts += [f"{f.label}={f.value}" for f in card.fields]
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def check_card_ref(card_ref: str) -> None:
    """Raises ValueError unless ``card_ref`` is a valid WeCom task_id (or empty)."""
    if not _CARD_REF_CHARS.fullmatch(card_ref):
        raise ValueError("card_ref may only contain 0-9 A-Z a-z _ - @ (WeCom task_id rules)")
    if len(card_ref.encode("ascii")) > MAX_CARD_REF_BYTES:
        raise ValueError(f"card_ref is longer than {MAX_CARD_REF_BYTES} bytes")


def make_card_ref(*parts: object) -> str:
    """Joins parts into a valid, deterministic card_ref, e.g. ``lead-42-wang_xm-1``.

    Characters WeCom refuses (a userid may contain '.') become '_'. Whenever a part had to be
    changed or the result cut to 128 bytes, a short hash of the original parts is appended so
    two different inputs can never collapse into the same task_id.
    """
    raw = "-".join(str(p) for p in parts)
    cleaned = _CARD_REF_BAD_CHAR.sub("_", raw)
    if cleaned == raw and len(cleaned) <= MAX_CARD_REF_BYTES:
        return cleaned
    digest = hashlib.sha1(raw.encode("utf-8")).hexdigest()[:10]
    return f"{cleaned[: MAX_CARD_REF_BYTES - len(digest) - 1]}-{digest}"


def _check_url(url: str, what: str) -> None:
    if not (url.startswith("https://") or url.startswith("http://")):
        raise ValueError(f"{what} must be an http(s) URL")
    if len(url.encode("utf-8")) > MAX_URL_BYTES:
        raise ValueError(f"{what} is longer than {MAX_URL_BYTES} bytes")
