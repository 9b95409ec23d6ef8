"""`render_metrics(rt)`: the metrics in Prometheus' text format, for `GET /metrics` and for
`gateway metrics`; the queue lag and the clock's lag are read from the database at each scrape."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.core.runtime import Runtime
from gateway.observe import metrics
from gateway.observe.queries import oldest_due, oldest_waiting
from gateway.outbound.outbox import QUEUES
from gateway.storage.db import transaction


def render_metrics(rt: Runtime) -> tuple[bytes, str]:
    """(body, content type) of one scrape: the counters of this process, or with
    PROMETHEUS_MULTIPROC_DIR those of every process writing there, and the database's gauges."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    registry.register(_Database(rt))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _ThisProcess:
    def collect(self) -> Iterator[Metric]:
        yield from metrics.REGISTRY.collect()


class _Database:
    """Gauges computed from the truth, so that every process and every scrape agree."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        now = self.rt.now()
        with transaction(self.rt.sessions, readonly=True) as conn:
            waiting = oldest_waiting(conn)
            due = oldest_due(conn, now)
        lag = GaugeMetricFamily(
            "gateway_queue_lag_seconds",
            "Age of the oldest Delivery not yet sent, per queue (0: none waiting)",
            labels=["queue"],
        )
        for queue in sorted({*QUEUES, *waiting}):
            lag.add_metric([queue], _age(now, waiting.get(queue)))
        yield lag
        yield GaugeMetricFamily(
            "gateway_clock_overdue_seconds",
            "How long the oldest Deadline due has waited for a clock (0: none waiting)",
            value=_age(now, due),
        )


def _age(now: datetime, since: datetime | None) -> float:
    if since is None:
        return 0.0
    if since.tzinfo is None:  # SQLite gives naive UTC
        since = since.replace(tzinfo=UTC)
    return max(0.0, (now - since).total_seconds())
