"""Full resync, for the first connection and for recovery.

- ``pull``: pages through the CRM's list endpoint (``[crm_bridge] pull_url``) and upserts every
  customer, then every lead, through the same rules as the inbound API (ownership, audit, no
  echo). Page shape: ``{"customers": [...], "leads": [...], "next_cursor": "..." | null,
  "total": N?}``; each record carries ``external_id`` plus the PUT body's fields. Requested as
  ``GET pull_url?limit=<page_size>&cursor=<next_cursor>`` with ``Authorization: Bearer pull_token``.
- ``push_since``: re-emits a ``<entity>.snapshot`` change event for every customer and lead
  changed since a moment, through the outbox (delivered in order after anything still queued).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable, Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import session_factory
from store.models import Customer, Lead
from crm_bridge.capture import emit, snapshot_event
from crm_bridge.inbound import CrmInbound, InboundError
from leadbot.clock import Clock

Fetch = Callable[[str | None], Awaitable[Mapping[str, Any]]]
Progress = Callable[[int], None]


@dataclass
class PullSummary:
    pages: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (type, external_id, why)
    total: int | None = None


class PullError(Exception):
    pass


def http_fetcher(url: str, token: str, page_size: int, *, timeout: float = 30.0) -> Callable[[Any], Fetch]:
    """Builds fetch(cursor) over an aiohttp session the caller owns."""

    def bind(session: Any) -> Fetch:
        async def fetch(cursor: str | None) -> Mapping[str, Any]:
            import aiohttp

            params: dict[str, str] = {"limit": str(page_size)}
            if cursor:
                params["cursor"] = cursor
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            try:
                async with session.get(url, params=params, headers=headers,
                                       timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                    if resp.status != 200:
                        raise PullError(f"{url} answered HTTP {resp.status}")
                    data = await resp.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError) as e:
                raise PullError(f"{url}: {type(e).__name__}: {e}") from None
            if not isinstance(data, Mapping):
                raise PullError(f"{url}: expected a JSON object per page")
            return data

        return fetch

    return bind


async def pull(inbound: CrmInbound, fetch: Fetch, *, progress: Progress | None = None,
               on_total: Callable[[int], None] | None = None, max_pages: int = 100000) -> PullSummary:
    summary = PullSummary()
    cursor: str | None = None
    seen_cursors: set[str] = set()
    for _ in range(max_pages):
        page = await fetch(cursor)
        summary.pages += 1
        if summary.total is None and isinstance(page.get("total"), int):
            summary.total = page["total"]
            if on_total:
                on_total(page["total"])
        for kind in ("customers", "leads"):
            records = page.get(kind) or []
            if not isinstance(records, list):
                raise PullError(f"page {summary.pages}: {kind} must be a list")
            for record in records:
                await _apply(inbound, kind, record, summary)
                if progress:
                    progress(1)
        nxt = page.get("next_cursor")
        if not nxt:
            return summary
        if str(nxt) in seen_cursors:
            raise PullError(f"the CRM returned cursor {nxt!r} twice; stopping")
        seen_cursors.add(str(nxt))
        cursor = str(nxt)
    raise PullError(f"stopped after {max_pages} pages")


async def _apply(inbound: CrmInbound, kind: str, record: Any, summary: PullSummary) -> None:
    if not isinstance(record, Mapping) or not record.get("external_id"):
        summary.rejected.append((kind[:-1], "", "record without external_id"))
        return
    ext = str(record["external_id"])
    body = {k: v for k, v in record.items() if k not in ("external_id", "version")}
    try:
        if kind == "customers":
            result = await inbound.upsert_customer(ext, body, actor="crm:pull")
        else:
            result = await inbound.upsert_lead(ext, body, actor="crm:pull")
    except InboundError as e:
        summary.rejected.append((kind[:-1], ext, e.message))
        return
    if result.created:
        summary.created += 1
    elif result.changed:
        summary.updated += 1
    else:
        summary.unchanged += 1


async def count_changed_since(engine: AsyncEngine, since: datetime) -> int:
    async with session_factory(engine)() as session:
        n = 0
        for model in (Customer, Lead):
            n += (await session.execute(select(func.count()).select_from(model)
                                        .where(model.updated_at >= since))).scalar_one()
        return int(n)


async def push_since(engine: AsyncEngine, clock: Clock, urls: Sequence[str], since: datetime, *,
                     progress: Progress | None = None, batch: int = 200) -> int:
    """Enqueues a snapshot event per entity changed since ``since``; returns how many entities."""
    if not urls:
        return 0
    run = uuid.uuid4().hex[:12]
    sessions = session_factory(engine)
    total = 0
    for entity_type, model in (("customer", Customer), ("lead", Lead)):
        after = 0
        while True:
            async with sessions() as session, session.begin():
                ids = (await session.execute(
                    select(model.id).where(model.updated_at >= since, model.id > after)
                    .order_by(model.id).limit(batch))).scalars().all()
                if not ids:
                    break
                now = clock.now()
                for entity_id in ids:
                    event = await session.run_sync(lambda s, i=entity_id: snapshot_event(
                        s, entity_type, i, f"{entity_type}.snapshot",
                        str(uuid.uuid5(uuid.NAMESPACE_URL, f"resync:{run}:{entity_type}:{i}")), now,
                        {"actor": "resync", "since": since.isoformat()}))
                    if event is not None:
                        await emit(session, event, urls, now)
                        total += 1
                after = ids[-1]
            if progress:
                progress(len(ids))
    return total
