"""What ``backbeat serve`` tells Prometheus at ``/metrics``: its requests (per route template,
method and status, and their latency) and the store's own counters (``backbeat_store_*``:
what every writer of the store committed, read when Prometheus scrapes).

The stream's metrics (``backbeat.observe.metrics``) come from the process that streams
(``stream --metrics-port``); these come from whoever serves, so several ``serve`` replicas
behind one Service each report their own requests and the same store.

Next: ``routes/ops.py`` (the route), ``app.py`` (where the middleware goes).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Final

from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backbeat.observe.metrics import new_registry
from backbeat.sinks import queries as q

LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

_STORE_COUNTERS: Final = (
    ("events_in", "Events the store's writers read."),
    ("accepted", "Events accepted (valid, on time, not duplicates)."),
    ("duplicates", "Events dropped as duplicates."),
    ("late", "Events later than the allowed lateness (dead letters)."),
    ("dead", "Dead letters (malformed, out of contract or late)."),
    ("batches", "Committed micro-batches."),
)


class _StoreTotals(Collector):
    """The store's commit counters, asked when scraped (nothing when it keeps none)."""

    def __init__(self, reader: q.Reader) -> None:
        self._reader = reader

    def collect(self) -> Iterator[Metric]:
        if q.name_of(q.BatchTotals) not in self._reader.answers():
            return
        totals = self._reader.one(q.BatchTotals())
        for name, text in _STORE_COUNTERS:
            yield CounterMetricFamily(f"backbeat_store_{name}", text, value=int(totals[name]))
        yield GaugeMetricFamily(
            "backbeat_store_events_per_second",
            "Events committed per second over the last 10 s.",
            value=float(totals["events_per_second"] or 0),
        )
        quantiles = GaugeMetricFamily(
            "backbeat_store_batch_seconds",
            "Micro-batch latency of the last 100 batches, by quantile.",
            labels=["quantile"],
        )
        for quantile, value in zip(
            ("0.5", "0.9", "0.99"), totals["batch_seconds"] or [], strict=False
        ):
            quantiles.add_metric([quantile], value)
        yield quantiles
        age = totals["last_commit_age_s"]
        yield GaugeMetricFamily(
            "backbeat_store_last_commit_age_seconds",
            "Seconds since the store's last commit.",
            value=float(age) if age is not None else float("nan"),
        )


class ServeMetrics:
    """One app's registry: request counts and latency, and the store's totals."""

    def __init__(self, reader: q.Reader) -> None:
        self.registry = registry = new_registry()
        self.requests = Counter(
            "backbeat_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "backbeat_http_request_seconds",
            "Time to the end of the answer, by route template (live streams: their life).",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        registry.register(_StoreTotals(reader))


class RequestMetrics:
    """ASGI middleware counting every HTTP request in :class:`ServeMetrics` (routes by
    template, so ``/api/users/42/...`` and ``/api/users/43/...`` are one series)."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = _template(scope)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


def _template(scope: Scope) -> str:
    """The matched route's path template; a bounded name for everything else."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return "/static" if str(scope.get("path", "")).startswith("/static/") else "unmatched"
