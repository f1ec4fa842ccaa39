"""Run every metric's SQL over one micro-batch of Arrow tables with DuckDB.

The embedded engine calls :class:`BatchAggregator` once per micro-batch with the fresh events
of each topic and gets one small Arrow table of partial rows per metric.

Next: ``metrics.py`` (the definitions), ``backbeat.engine.pipeline`` (the caller).
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pyarrow as pa

from backbeat.analytics.metrics import METRICS, VIEWS, Metric
from backbeat.events.schema import Topic, arrow_schema


class BatchAggregator:
    """Computes partial aggregates of a batch on a private in-memory DuckDB connection."""

    def __init__(self, metrics: tuple[Metric, ...] = METRICS, threads: int = 2) -> None:
        self._metrics = metrics
        self._con = duckdb.connect(config={"threads": threads})

    def aggregate(self, fresh: Mapping[Topic, pa.Table]) -> dict[str, pa.Table]:
        """Partial rows of every metric for one batch (topics absent from ``fresh`` are empty)."""
        for topic, view in VIEWS.items():
            self._con.register(view, fresh.get(topic, arrow_schema(topic).empty_table()))
        try:
            return {m.name: self._con.sql(m.sql).to_arrow_table() for m in self._metrics}
        finally:
            for view in VIEWS.values():
                self._con.unregister(view)

    def close(self) -> None:
        self._con.close()
