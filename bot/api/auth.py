"""Bearer-token checks shared by the intake and CRM APIs."""

from __future__ import annotations

import hmac
from typing import Iterable, Mapping


def bearer_ok(header: str, tokens: Iterable[str]) -> bool:
    """True when `Authorization: Bearer <t>` names one of `tokens`. Every candidate is compared
    in constant time (timing reveals no valid prefix); bytes that are not UTF-8 never match."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    given = token.strip().encode("utf-8", "replace")
    found = False
    for candidate in tokens:
        found |= hmac.compare_digest(candidate.encode(), given)
    return found


def bearer_source(header: str, sources: Mapping[str, Iterable[str]]) -> str | None:
    """The name of the source whose token `Authorization: Bearer <t>` carries, or None. Every
    token of every source is compared (constant time, no early exit)."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    given = token.strip().encode("utf-8", "replace")
    found: str | None = None
    for name, tokens in sources.items():
        for candidate in tokens:
            if hmac.compare_digest(candidate.encode(), given):
                found = name
    return found
