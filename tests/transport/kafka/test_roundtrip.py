"""Simulator -> Kafka -> engine -> store equals the same events streamed from JSONL files,
exactly.

The reference is the existing engine over the JSONL files of the same simulated run (the
simulator is deterministic), compared metric by metric through the store's reader. The Kafka
side runs ``backbeat stream --bootstrap-servers ... --until-end`` in a child process exactly
as a user would, reading 3 partitions per topic that the producer keyed by user. A quick
check of the whole path; ``test_million.py`` holds the 1 M-event runs against the oracle.

Next: ``test_million.py``, ``test_dead_letters.py``, ``tests/engine/test_kill9.py``.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from backbeat import wiring
from backbeat.analytics.metrics import METRICS
from backbeat.engine.base import EngineSettings
from backbeat.engine.pipeline import Pipeline
from backbeat.simulate.simulator import Simulator, SimulatorSettings
from backbeat.simulate.writer import write_run
from backbeat.sinks.duckdb.store import DuckDBStore
from backbeat.sinks.queries import MetricRows
from backbeat.transport.jsonl import JsonlSource, discover
from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.kafka import clean_env, committed, stream_command
from tests.support.stores import all_metrics

pytestmark = pytest.mark.integration

RUN = SimulatorSettings(
    users=6_000,
    seed=11,
    start=datetime(2026, 1, 5, 10, tzinfo=UTC),
    end=datetime(2026, 1, 5, 16, tzinfo=UTC),
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, list[Any]]]:
    """(events, metrics) of the run streamed from JSONL files by the same engine."""
    folder = tmp_path_factory.mktemp("jsonl")
    counts = write_run(Simulator(RUN).batches(step_ms=600_000), folder / "in")
    store = DuckDBStore.at(str(folder / "store"))
    pipeline = Pipeline(JsonlSource(discover([folder / "in"])), store, settings=EngineSettings())
    try:
        report = pipeline.run()
        reader = store.reader()
        metrics = {m.name: reader.run(MetricRows(name=m.name)).to_pylist() for m in METRICS}
    finally:
        pipeline.close()
        store.close()
    assert report.accepted == sum(counts.values()) > 60_000
    return report.accepted, metrics


def test_kafka_stream_equals_jsonl_stream(
    topics: KafkaSettings, reference: tuple[int, dict[str, list[Any]]], tmp_path: Path
) -> None:
    events, metrics = reference
    report = wiring.produce_to_kafka(RUN, topics, progress=False)
    assert (report.delivered, report.failed) == (events, 0)
    store = tmp_path / "store"
    done = subprocess.run(
        stream_command(topics, store, "--until-end"), capture_output=True, env=clean_env(),
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    summary = json.loads(done.stdout.splitlines()[-1])
    assert (summary["events_in"], summary["dead"], summary["stopped_by"]) == (
        events,
        0,
        "exhausted",
    )
    assert committed(store) == (events, events), "lost or doubled events"
    stored = all_metrics(store)
    wrong = [name for name, rows in stored.items() if rows != metrics[name]]
    assert not wrong, f"metrics differ from the JSONL run: {wrong}"
