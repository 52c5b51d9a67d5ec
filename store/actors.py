"""Who did something, as audit and activity rows write it: a rep is ``rep:<id>``; anything else
(``cli``, ``timer:…``, ``crm``) names a process. Written and read here, so a reader that needs
the rep behind a row (routing's passers, who set the duty rota) does not parse a format written
elsewhere."""

from __future__ import annotations

REP_PREFIX = "rep:"


def rep_actor(rep_id: int) -> str:
    return f"{REP_PREFIX}{rep_id}"


def rep_of_actor(actor: str | None) -> int | None:
    """The rep id an actor names, or None when it names no rep."""
    if actor and actor.startswith(REP_PREFIX) and actor[len(REP_PREFIX):].isdecimal():
        return int(actor[len(REP_PREFIX):])
    return None
