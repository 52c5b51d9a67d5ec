"""Prometheus metrics, one registry per app (no module-level globals, so tests stay independent)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
# Channels every deployment sees; the ones its routing rules name are added per app.
COMMON_CHANNELS = ("api", "web", "form", "crm", "wecom", "dingtalk", "wechat", "baidu", "douyin",
                   "call_center", "event", "referral")
OTHER = "other"


def channels_named_in(rules: Iterable[Mapping[str, Any]]) -> set[str]:
    """The source channels [assignment] rules match on: those get their own metric label."""
    out: set[str] = set()
    for rule in rules:
        match = rule.get("match") or {}
        for key in ("source_channel", "channel"):
            value = match.get(key)
            values = value if isinstance(value, (list, tuple)) else [value]
            out.update(str(v).strip().lower() for v in values if isinstance(v, str) and v.strip())
    return out


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, channels: Iterable[str] = ()) -> None:
        # Label values are bounded: a source channel is whatever a source sends (unbounded, and
        # it could be a phone number), so only known channels are labels; the rest are "other".
        self.channels = frozenset(COMMON_CHANNELS) | {c.strip().lower() for c in channels}
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("leadbot_http_requests_total", "HTTP requests by route and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("leadbot_http_request_seconds", "HTTP request latency by route",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.leads = Counter("leadbot_intake_leads_total", "Leads received by outcome (created, replayed, rejected)",
                             ["outcome", "channel"], registry=r)
        self.callbacks = Counter("leadbot_callbacks_total", "Platform callbacks by platform and outcome",
                                 ["platform", "outcome"], registry=r)
        self.events = Counter("leadbot_events_processed_total", "Inbox events processed by kind and outcome",
                              ["kind", "outcome"], registry=r)
        self.inbox_pending = Gauge("leadbot_inbox_pending", "Inbox rows waiting to be processed", registry=r)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, cached: `.labels()` validates and locks on every call, and
        the hot paths (every request, every callback) ask for the same few children again and
        again. Same children, same cardinality as calling `.labels()` directly."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def channel_label(self, channel: str) -> str:
        low = channel.strip().lower()
        return low if low in self.channels else OTHER

    def render(self) -> bytes:
        return generate_latest(self.registry)
