"""The routing decisions on record for a lead, newest first: what 为什么是我 / `leadbot explain`
put into words (routing/explain_text.py, with the catalogue's words; crm_bridge holds no text)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import session_factory
from store.models import Lead, RoutingDecision


async def load_decisions(store_or_engine: Any, lead_id: int, limit: int = 6) -> tuple[list[Any], bool]:
    """(The last ``limit`` RoutingDecision rows of the lead, newest first; whether the lead
    exists). Accepts an AsyncEngine or anything with an ``engine`` attribute (SqlCRMStore, Router)."""
    engine: AsyncEngine = store_or_engine if isinstance(store_or_engine, AsyncEngine) \
        else store_or_engine.engine
    sessions = session_factory(engine)
    async with sessions() as session:
        rows = list((await session.execute(
            select(RoutingDecision).where(RoutingDecision.lead_id == lead_id)
            .order_by(RoutingDecision.id.desc()).limit(limit))).scalars())
        exists = bool(rows) or (await session.get(Lead, lead_id)) is not None
    return rows, exists
