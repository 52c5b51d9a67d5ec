"""The context every route and handler receives: settings, clock, stores and services.

bot/app.py builds exactly one per application; nothing else holds engines, clients or settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.metrics import Metrics
from store.inbox import Inbox
from crm.store import CRMStore
from leadbot.clock import Clock
from leadbot.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    store: CRMStore
    inbox: Inbox
    metrics: Metrics
    log: Any
    # Feature services wired by create_app (platform clients, outbox, scheduler, processor…).
    services: dict[str, Any] = field(default_factory=dict)

    @property
    def lang(self) -> str:
        return self.settings.server.language


CTX: web.AppKey[AppContext] = web.AppKey("leadbot_ctx", AppContext)


def ctx_of(request: web.Request) -> AppContext:
    return request.app[CTX]
