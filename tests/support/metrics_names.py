"""The metrics contract in one place: the Prometheus metric names ``backbeat stream
--metrics-port`` and ``backbeat serve`` (``/metrics``) expose, with their types, and how to
read the names a PromQL query or a live ``/metrics`` page uses.

``tests/deploy/test_compose.py`` checks every metric the Grafana dashboard
(``deploy/grafana/dashboards/backbeat.json``) queries is one of these;
``tests/deploy/test_stack.py`` checks those the dashboard uses really appear in the live
``/metrics`` of the stream and serve processes it starts.

Next: ``deploy/grafana/dashboards/backbeat.json``, ``deploy/prometheus/prometheus.yml``.
"""

from __future__ import annotations

import re
from typing import Final, Literal

Kind = Literal["counter", "gauge", "histogram"]

STREAM: Final[dict[str, Kind]] = {
    "backbeat_events_in_total": "counter",
    "backbeat_accepted_total": "counter",
    "backbeat_duplicates_total": "counter",
    "backbeat_dead_letters_total": "counter",  # {reason}
    "backbeat_batches_total": "counter",
    "backbeat_batch_seconds": "histogram",
    "backbeat_consumer_lag": "gauge",  # {topic, partition}: Kafka sources
    "backbeat_watermark_delay_seconds": "gauge",
    "backbeat_sink_errors_total": "counter",  # {sink}
    "backbeat_last_commit_timestamp_seconds": "gauge",
}
"""``backbeat stream --metrics-port PORT``: the engine's metrics."""

SERVE: Final[dict[str, Kind]] = {
    "backbeat_http_requests_total": "counter",  # {route, method, status}
    "backbeat_http_request_seconds": "histogram",  # {route}
    "backbeat_store_events_in_total": "counter",
    "backbeat_store_batches_total": "counter",
    "backbeat_store_last_commit_age_seconds": "gauge",
}
"""``backbeat serve`` (and ``stream --serve``): ``/metrics`` beside the API."""

HISTOGRAM_SERIES: Final = ("_bucket", "_sum", "_count")
_NAME = re.compile(r"\bbackbeat_[a-z0-9_]+\b")
_TYPE_LINE = re.compile(r"^# TYPE (\S+) (\w+)", re.MULTILINE)


def family(series: str) -> str:
    """The metric a series name belongs to (``backbeat_batch_seconds_bucket`` ->
    ``backbeat_batch_seconds``; other names as they are)."""
    for suffix in HISTOGRAM_SERIES:
        base = series.removesuffix(suffix)
        if base != series and {**STREAM, **SERVE}.get(base) == "histogram":
            return base
    return series


def used_in(promql: str) -> set[str]:
    """The ``backbeat_*`` series names a PromQL expression reads."""
    return set(_NAME.findall(promql))


def exposed(text: str) -> set[str]:
    """The metric names a Prometheus text page declares (its ``# TYPE`` lines), with a
    histogram's ``_bucket``/``_sum``/``_count`` series and a counter under both spellings
    (``x_total`` and the family ``x``): a labelled metric with no sample yet still counts."""
    names: set[str] = set()
    for name, kind in _TYPE_LINE.findall(text):
        names.add(name)
        if kind == "histogram":
            names.update(name + suffix for suffix in HISTOGRAM_SERIES)
        if kind == "counter":
            names.add(name if name.endswith("_total") else name + "_total")
    return names
