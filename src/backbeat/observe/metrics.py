"""What ``backbeat stream`` tells Prometheus: its own counters, not the store's.

:class:`StreamMetrics` holds one ``prometheus_client`` registry per run. The engine tells it
of each committed batch (``committed``: events in, accepted, duplicates, dead letters by kind
of reason, batch latency) and of each failed store or sink write (``failed``); the source's
consumer lag and the watermark delay are read when Prometheus scrapes, so a stalled engine
shows a lag and a delay that grow. Metric names are the contract the Grafana dashboard and the
Prometheus configuration in ``deploy/`` use (:data:`NAMES`).

Next: ``exporter.py`` (the HTTP endpoint), ``backbeat.serve.metrics`` (what ``serve`` adds).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from backbeat.engine.base import RunReport
from backbeat.sinks.base import BatchStats


def new_registry() -> CollectorRegistry:
    """An empty registry, with no ``*_created`` twin of each counter (nothing reads them)."""
    no_created: Callable[[], None] = disable_created_metrics  # the library leaves it untyped
    no_created()
    return CollectorRegistry()


BATCH_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Batch latency buckets (seconds): a micro-batch takes milliseconds to a minute."""

NAMES: Final = (
    "backbeat_events_in_total",
    "backbeat_accepted_total",
    "backbeat_duplicates_total",
    "backbeat_dead_letters_total",
    "backbeat_batches_total",
    "backbeat_batch_seconds",
    "backbeat_consumer_lag",
    "backbeat_watermark_delay_seconds",
    "backbeat_sink_errors_total",
    "backbeat_last_commit_timestamp_seconds",
)
"""The metric families ``stream`` exports (histograms add ``_bucket``, ``_sum``, ``_count``)."""


def _topic_and_partition(name: str) -> tuple[str, str]:
    """``kafka:listen_events:3`` -> ``("listen_events", "3")`` (a source's partition names
    are ``kind:topic:number``); another shape -> ``(name, "")``."""
    _, _, rest = name.partition(":")
    topic, _, number = rest.rpartition(":")
    return (topic, number) if topic else (name, "")


class _Scraped(Collector):
    """Gauges computed when Prometheus scrapes: lag per partition, delay per topic."""

    def __init__(
        self, lag: Callable[[], Mapping[str, int] | None], watermarks: Callable[[], dict[str, int]]
    ) -> None:
        self._lag = lag
        self._watermarks = watermarks

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "backbeat_consumer_lag",
            "Records in the partition not read by the engine yet (Kafka sources).",
            labels=["topic", "partition"],
        )
        for name, count in sorted((self._lag() or {}).items()):
            lag.add_metric(list(_topic_and_partition(name)), count)
        yield lag
        delay = GaugeMetricFamily(
            "backbeat_watermark_delay_seconds",
            "Wall clock minus the topic's event-time watermark (grows while nothing commits).",
            labels=["topic"],
        )
        now_ms = time.time() * 1000
        for topic, watermark in sorted(self._watermarks().items()):
            delay.add_metric([topic], max(0.0, (now_ms - watermark) / 1000))
        yield delay


class StreamMetrics:
    """One run's metrics; :meth:`committed` and :meth:`failed` are the engine's callbacks."""

    def __init__(self, lag: Callable[[], Mapping[str, int] | None] = lambda: None) -> None:
        """``lag``: the source's :meth:`~backbeat.transport.base.Source.lag`."""
        self.registry = registry = new_registry()
        self._events_in = Counter(
            "backbeat_events_in", "Events read from the source.", registry=registry
        )
        self._accepted = Counter(
            "backbeat_accepted",
            "Events accepted: valid, on time, not duplicates.",
            registry=registry,
        )
        self._duplicates = Counter(
            "backbeat_duplicates", "Events dropped as duplicates.", registry=registry
        )
        self._dead = Counter(
            "backbeat_dead_letters",
            "Dead letters by kind of reason (late: behind the allowed lateness).",
            ["reason"],
            registry=registry,
        )
        self._batches = Counter("backbeat_batches", "Committed micro-batches.", registry=registry)
        self._latency = Histogram(
            "backbeat_batch_seconds",
            "Micro-batch latency: from the poll to the end of its commit.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self._errors = Counter(
            "backbeat_sink_errors",
            "Batches a store (sink=store) or result sink failed to write.",
            ["sink"],
            registry=registry,
        )
        self._last_commit = Gauge(
            "backbeat_last_commit_timestamp_seconds",
            "When the last batch was committed (Unix time).",
            registry=registry,
        )
        self._lock = threading.Lock()
        self._watermarks: dict[str, int] = {}
        registry.register(_Scraped(lag, self._watermark_copy))

    def committed(self, stats: BatchStats, report: RunReport | None = None) -> None:
        """Count one committed batch (an :data:`~backbeat.engine.base.OnBatch`)."""
        self._events_in.inc(stats.events_in)
        self._accepted.inc(stats.accepted)
        self._duplicates.inc(stats.duplicates)
        for reason, count in stats.dead_reasons.items():
            self._dead.labels(reason).inc(count)
        self._batches.inc()
        self._latency.observe(stats.seconds + stats.phases.get("commit", 0.0))
        self._last_commit.set_to_current_time()
        with self._lock:
            for topic, watermark in stats.watermarks.items():
                if watermark is not None:
                    self._watermarks[topic] = watermark

    def failed(self, part: str, error: BaseException) -> None:
        """Count a batch the store or a sink failed (an :data:`~backbeat.engine.base.OnError`)."""
        self._errors.labels(part).inc()

    def _watermark_copy(self) -> dict[str, int]:
        with self._lock:
            return dict(self._watermarks)
