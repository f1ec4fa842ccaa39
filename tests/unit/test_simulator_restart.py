"""The in-process path is exactly-once too: stop anywhere, restart, same results as one run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from backbeat.analytics.metrics import METRICS
from backbeat.engine.base import EngineSettings
from backbeat.engine.pipeline import Pipeline
from backbeat.simulate.simulator import Simulator, SimulatorSettings
from backbeat.sinks.duckdb.store import DuckDBStore
from backbeat.sinks.queries import MetricRows
from backbeat.transport.inprocess import SimulatorSource
from backbeat.transport.prefetch import Prefetching

SETTINGS = SimulatorSettings(
    users=1500, seed=9, start=datetime(2026, 2, 2, 10, tzinfo=UTC),
    end=datetime(2026, 2, 2, 16, tzinfo=UTC),
)  # fmt: skip
ENGINE = EngineSettings(max_batch_events=3_000)


def _source(read_ahead: bool) -> SimulatorSource | Prefetching:
    source = SimulatorSource(Simulator(SETTINGS), step_ms=120_000)
    return Prefetching(source, 3_000, worker="process") if read_ahead else source


def _snapshot(store: DuckDBStore) -> dict[str, list[dict[str, object]]]:
    reader = store.reader()
    return {m.name: reader.run(MetricRows(name=m.name)).to_pylist() for m in METRICS}


@pytest.mark.parametrize("read_ahead", [False, True])
def test_stop_and_restart_equals_one_run(tmp_path: Path, read_ahead: bool) -> None:
    whole = DuckDBStore.at(str(tmp_path / "whole"))
    Pipeline(_source(False), whole, settings=ENGINE).run()
    expected = _snapshot(whole)
    assert sum(r["plays"] for r in expected["genre_minute"]) > 1000  # type: ignore[misc]

    pieces = DuckDBStore.at(str(tmp_path / "pieces"))
    stops = 0
    while True:
        pipeline = Pipeline(_source(read_ahead), pieces, settings=ENGINE)
        report = pipeline.run(max_events=4_000)
        pipeline.close()
        stops += 1
        if report.stopped_by == "exhausted" or report.events_in == 0:
            break
    assert stops > 3
    assert _snapshot(pieces) == expected
