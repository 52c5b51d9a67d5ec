"""Which engines a change capture watches (the CRM bridge's, crm_bridge/capture.py).

The store writes audit rows, and a capture turns those it sees flushed into change events. Code
that writes an audit row without the ORM (a hot path) must go through a session when a capture
watches its engine, so the store asks here; the bridge registers its capture here. Neither
imports the other.
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

_installed: "weakref.WeakKeyDictionary[Engine, Any]" = weakref.WeakKeyDictionary()


def sync_engine(engine: AsyncEngine | Engine) -> Engine:
    return engine.sync_engine if isinstance(engine, AsyncEngine) else engine


def install(engine: AsyncEngine | Engine, capture: Any) -> None:
    _installed[sync_engine(engine)] = capture


def uninstall(engine: AsyncEngine | Engine) -> None:
    _installed.pop(sync_engine(engine), None)


def capture_of(bind: Any) -> Any | None:
    """The capture installed on a session's bind (an engine or a connection), if any."""
    if not _installed or bind is None:
        return None
    return _installed.get(getattr(bind, "engine", bind))


def watches(engine: AsyncEngine | Engine) -> bool:
    """Whether a capture turns this engine's flushed audit rows into change events."""
    return bool(_installed) and sync_engine(engine) in _installed
