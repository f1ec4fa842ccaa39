"""Partial aggregates merge additively: any split of a batch gives the same merged result."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backbeat.analytics.compute import BatchAggregator
from backbeat.analytics.metrics import METRICS, Merge, Metric, merged_sql
from backbeat.events.schema import Topic
from backbeat.scratch import scratch
from backbeat.simulate.simulator import Simulator, SimulatorSettings


@pytest.fixture(scope="module")
def events() -> dict[Topic, pa.Table]:
    settings = SimulatorSettings(
        users=3000, seed=11, start=datetime(2026, 3, 2, 8, tzinfo=UTC),
        end=datetime(2026, 3, 2, 16, tzinfo=UTC),
    )  # fmt: skip
    return Simulator(settings).run()


def _merge(metric: Metric, parts: list[pa.Table]) -> list[dict[str, object]]:
    con = scratch()
    con.register("_parts", pa.concat_tables(parts))
    try:
        keys = ", ".join(metric.key_names)
        return (
            con.sql(f"{merged_sql(metric, '_parts')} ORDER BY {keys}").to_arrow_table().to_pylist()
        )
    finally:
        con.unregister("_parts")


def _split(tables: dict[Topic, pa.Table], cuts: list[float]) -> list[dict[Topic, pa.Table]]:
    pieces: list[dict[Topic, pa.Table]] = []
    bounds = [0.0, *sorted(cuts), 1.0]
    for lo, hi in itertools.pairwise(bounds):
        pieces.append(
            {
                t: tab.slice(
                    int(lo * tab.num_rows), int(hi * tab.num_rows) - int(lo * tab.num_rows)
                )
                for t, tab in tables.items()
            }
        )
    return pieces


@settings(max_examples=15, deadline=None)
@given(st.lists(st.floats(0, 1), max_size=5))
def test_any_split_merges_to_the_whole(events: dict[Topic, pa.Table], cuts: list[float]) -> None:
    aggregator = BatchAggregator()
    whole = aggregator.aggregate(events)
    pieces = [aggregator.aggregate(p) for p in _split(events, cuts)]
    pieces.reverse()  # order of merging does not matter either
    for metric in METRICS:
        assert _merge(metric, [p[metric.name] for p in pieces]) == _merge(
            metric, [whole[metric.name]]
        )
    aggregator.close()


def test_every_metric_has_rows_and_distinct_metrics_have_no_values(
    events: dict[Topic, pa.Table],
) -> None:
    out = BatchAggregator().aggregate(events)
    for metric in METRICS:
        table = out[metric.name]
        assert table.num_rows > 0, metric.name
        assert table.column_names == [name for name, _ in metric.columns]
        if metric.merge is Merge.DISTINCT:
            assert metric.values == ()
    plays = pc.sum(out["genre_minute"].column("plays")).as_py()
    assert plays == events[Topic.LISTEN].num_rows
