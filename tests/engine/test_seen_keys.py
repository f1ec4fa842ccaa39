"""De-dup keys in the store: commits write only what changed, yet the store holds the full set.

Each commit inserts the keys a batch added and deletes, per topic, those the watermark left
behind (``Deduplicator.changes``). Over a multi-batch run with duplicates, late events and
pruning, the stored ``meta_seen`` rows must equal the engine's full key set after every
commit, and a restarted engine must load exactly that set.

Next: ``tests/unit/test_eventtime_dedup.py`` (the same law, property-based), ``test_kill9.py``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from backbeat.engine.base import EngineSettings, RunReport
from backbeat.engine.pipeline import Pipeline
from backbeat.sinks.base import BatchStats
from backbeat.sinks.duckdb.store import DuckDBStore
from backbeat.transport.jsonl import JsonlSource, discover
from tests.support.eventlog import generate, write_log
from tests.support.harness import metric_mismatches
from tests.support.oracle import compute

_COLUMNS = "topic, event_id, session_id, item, ts, partition"


def _seen(store: DuckDBStore) -> pa.Table:
    seen = store.load_state().seen
    assert seen is not None
    return seen


def _rows(table: pa.Table) -> list[tuple[object, ...]]:
    return sorted(tuple(r.values()) for r in table.select(_COLUMNS.split(", ")).to_pylist())


def test_stored_keys_equal_the_full_set_after_every_commit(tmp_path: Path) -> None:
    log = write_log(tmp_path / "in", generate(150, 40, seed=11), seed=12)
    expected = compute(log.directory, log.malformed_offsets())
    store_dir = tmp_path / "store"
    # Inline commits: the check compares the store with the engine's keys right after each
    # commit, before the next batch changes them.
    settings = EngineSettings(max_batch_events=400, overlap_commit=False)
    store = DuckDBStore.at(str(store_dir))
    sizes: list[int] = []
    mismatches: list[int] = []

    def check(stats: BatchStats, report: RunReport) -> None:
        stored = _rows(_seen(store))
        sizes.append(len(stored))
        if stored != _rows(pipeline._dedup.snapshot()):
            mismatches.append(report.batches)

    source = JsonlSource(discover([log.directory]))
    pipeline = Pipeline(source, store, settings=settings, on_batch=check)
    first = pipeline.run(max_events=3000)
    pipeline.close()
    source = JsonlSource(discover([log.directory]))
    pipeline = Pipeline(source, store, settings=settings, on_batch=check)
    assert _rows(pipeline._dedup.snapshot()) == _rows(_seen(store))
    rest = pipeline.run()
    pipeline.close()
    store.close()
    assert mismatches == []
    assert first.batches + rest.batches == len(sizes) > 10
    assert first.duplicates + rest.duplicates > 0
    assert max(sizes) > sizes[-1], "the watermark never pruned a stored key"
    assert metric_mismatches(store_dir, expected) == []
