"""Several engine processes on one store: commits are fenced by positions.

The store refuses a commit whose partitions another process has moved on (and changes
nothing); the engine then throws the batch away and resumes from the store. Two pipelines
that both believe they own every partition of one log take turns on one shared store: each
time one commits behind the other's back it is fenced, and the results stay exactly the
oracle's. Partition state (positions, watermarks, de-dup keys) can be loaded for just the
partitions a process takes over.

Next: ``tests/transport/kafka/test_group.py`` (the same with two real consumer-group members).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from backbeat.engine.base import EngineSettings
from backbeat.engine.pipeline import Pipeline
from backbeat.errors import FencedError
from backbeat.sinks.base import (
    DEAD_LETTER_SCHEMA,
    SEEN_SCHEMA,
    BatchStats,
    Commit,
    PartitionState,
    SinkBatch,
)
from backbeat.sinks.duckdb.store import DuckDBStore
from backbeat.transport.jsonl import JsonlSource, discover
from tests.support.eventlog import generate, write_log
from tests.support.harness import metric_mismatches
from tests.support.oracle import compute


def _commit(expected: dict[str, int | None], position: int, seen_partition: str) -> Commit:
    seen = pa.table(
        {"topic": ["t"], "event_id": ["e"], "session_id": [1], "item": [1], "ts": [5],
         "partition": [seen_partition]},
    ).cast(SEEN_SCHEMA)  # fmt: skip
    return Commit(
        batch=SinkBatch(partials={}, events={}, dead_letters=DEAD_LETTER_SCHEMA.empty_table()),
        partitions={name: PartitionState("t", position, 5) for name in expected},
        expected=expected,
        seen=seen,
        stats=BatchStats(events_in=1),
    )


def test_a_commit_behind_another_processs_back_is_refused_whole(tmp_path: Path) -> None:
    first = DuckDBStore(tmp_path / "s.duckdb", shared=True)
    second = DuckDBStore(tmp_path / "s.duckdb", shared=True)
    assert first.commit(_commit({"p0": None, "p1": None}, 10, "p0")) == 1
    with pytest.raises(FencedError) as refused:
        second.commit(_commit({"p1": None}, 20, "p1"))  # p1 moved on under it
    assert refused.value.partitions == ["p1"]
    state = second.load_state()
    assert (state.batch_id, state.partitions["p1"].position) == (1, 10)
    assert second.commit(_commit({"p1": 10}, 20, "p1")) == 2  # now where it really is
    only = first.load_partitions(["p1"])
    assert list(only.partitions) == ["p1"]
    assert only.partitions["p1"].position == 20
    assert only.seen is not None
    assert only.seen.column("partition").to_pylist() == ["p1"]
    assert first.load_state().seen.num_rows == 2  # type: ignore[union-attr]


def test_two_processes_taking_turns_on_one_store_stay_exact(tmp_path: Path) -> None:
    log = write_log(tmp_path / "in", generate(60, 12, seed=5), seed=6)
    expected = compute(log.directory, log.malformed_offsets())
    store_dir = tmp_path / "store"
    settings = EngineSettings(max_batch_events=300)

    def member() -> Pipeline:
        store = DuckDBStore.at(str(store_dir), shared=True)
        return Pipeline(JsonlSource(discover([log.directory])), store, settings=settings)

    a, b = member(), member()  # both start from the empty store
    first = a.run(max_events=800)
    second = b.run(max_events=800)  # fenced at once: a moved every partition on
    rest_b = b.run()
    rest_a = a.run()  # fenced again, then finds nothing left
    for p in (a, b):
        p.close()
    total = sum(r.events_in for r in (first, second, rest_b, rest_a))
    assert first.events_in >= 800
    assert rest_b.events_in > 0
    assert rest_a.events_in == 0, "a stale process counted events a second time"
    assert total == sum(len(f.read_bytes().splitlines()) for f in discover([log.directory]))
    assert metric_mismatches(store_dir, expected) == []
