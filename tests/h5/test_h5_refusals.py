"""A client sending forged /a/{token} links costs one audit row per window, then gets 429."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from store.models import AuditEntry


async def _audit_rows(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(AuditEntry)
                                   .where(AuditEntry.action == "action.refused"))).scalar_one()


async def test_forged_links_are_audited_once_per_window_and_then_limited(client, engine, clock) -> None:
    statuses = []
    for i in range(40):
        resp = await client.get(f"/a/forged{i}.AAAA")
        statuses.append(resp.status)
    assert statuses[:30] == [403] * 30
    assert set(statuses[30:]) == {429}
    assert await _audit_rows(engine) == 1
    clock.advance(timedelta(seconds=61))  # a new window: audited (once) again
    assert (await client.get("/a/forged.AAAA")).status == 403
    assert await _audit_rows(engine) == 2
