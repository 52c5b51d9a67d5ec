from __future__ import annotations

import itertools
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import session_factory
from store.models import Rep
from store.outbox import NewOutboxItem, OutboxRepo
from leadbot.clock import ManualClock
from notifications.testing import FakeSender
from notifications.worker import DeliveryWorker
from tests.conftest import make_settings

_ids = itertools.count(1)


async def add_rep(engine: AsyncEngine, clock: ManualClock, *, name: str = "", wecom: str | None = None,
                  dingtalk: str | None = None, role: str = "rep", delivery: str = "auto") -> int:
    n = next(_ids)
    async with session_factory(engine)() as session, session.begin():
        rep = Rep(external_id=f"r{n}-{name}", name=name or f"rep{n}", wecom_userid=wecom, dingtalk_userid=dingtalk,
                  role=role, delivery=delivery, status="active", created_at=clock.now(), updated_at=clock.now())
        session.add(rep)
        await session.flush()
        return rep.id


def lead_card(rep_id: int, userid: str, lead_id: int, channel: str = "wecom", **kw: Any) -> NewOutboxItem:
    return NewOutboxItem(key=f"lead:{lead_id}:offer:{rep_id}", channel=channel, kind="card", recipient=userid,
                         payload={"summary": f"客户{lead_id} · 上海", "text": f"新线索：客户{lead_id}（上海）",
                                  "card": {"title": f"客户{lead_id}"}},
                         rep_id=rep_id, lead_id=lead_id, **kw)


@pytest.fixture
def repo(engine: AsyncEngine, clock: ManualClock) -> OutboxRepo:
    return OutboxRepo(engine, clock)


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def make_worker(engine: AsyncEngine, clock: ManualClock, sender: FakeSender, registry: CollectorRegistry):
    def build(**kw: Any) -> DeliveryWorker:
        settings = kw.pop("settings", None) or make_settings()
        kw.setdefault("registry", registry)
        kw.setdefault("rng", lambda: 1.0)
        kw.setdefault("link_for", lambda e, rep: f"https://leadbot.example/a/tok-{e.id}")
        return DeliveryWorker(engine, kw.pop("sender", sender), clock, settings, **kw)

    return build
