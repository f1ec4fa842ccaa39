"""Sums over the last hour stay exact past 16 bits (DuckDB 2.0.0 wrapped a sorted sum at
32,768 when the window's bound was arithmetic on a scalar subquery: ``/api/levels`` showed
"-365% paid" in the demo).

Next: ``backbeat.sinks.sql.pieces`` (``windows``), ``answers.py``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from backbeat.sinks import queries as q
from backbeat.sinks.base import (
    DEAD_LETTER_SCHEMA,
    SEEN_SCHEMA,
    BatchStats,
    Commit,
    PartitionState,
    SinkBatch,
)
from backbeat.sinks.duckdb.store import DuckDBStore

T0 = 1_796_600_000_000 // 60_000 * 60_000


def test_an_hour_of_levels_over_65536_listens_sums_exactly(tmp_path: Path) -> None:
    minutes = 60
    partial = pa.table(
        {
            "window_start": pa.array([T0 + m * 60_000 for m in range(minutes) for _ in (0, 1)]),
            "level": pa.array(["free", "paid"] * minutes),
            "listens": pa.array([1_000, 200] * minutes, pa.int64()),
        }
    )
    store = DuckDBStore.at(str(tmp_path / "store"))
    store.commit(
        Commit(
            batch=SinkBatch({"level_minute": partial}, {}, DEAD_LETTER_SCHEMA.empty_table()),
            partitions={"p": PartitionState("listen_events", 1, T0 + minutes * 60_000 - 1)},
            expected={"p": None},
            seen=SEEN_SCHEMA.empty_table(),
            stats=BatchStats(),
        )
    )
    got = store.reader().run(q.Levels(span=q.TimeRange(last=3_600_000))).to_pylist()
    assert got == [{"level": "free", "listens": 60_000}, {"level": "paid", "listens": 12_000}]
