"""Simulator -> Kafka -> engine -> store equals the same events streamed from JSONL files,
exactly, also when the Kafka stream process is killed with SIGKILL and restarted.

The reference is the existing engine over the JSONL files of the same simulated run (the
simulator is deterministic), compared metric by metric with ``store.metric(name)``. The Kafka
side runs ``backbeat stream --bootstrap-servers ... --until-end`` in child processes exactly
as a user would, reading 3 partitions per topic that the producer keyed by user.

Next: ``test_dead_letters.py``, ``tests/engine/test_kill9.py`` (the file-based kill test).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backbeat import wiring
from backbeat.analytics.metrics import METRICS
from backbeat.engine.pipeline import EngineSettings, Pipeline
from backbeat.simulate.simulator import Simulator, SimulatorSettings
from backbeat.simulate.writer import write_run
from backbeat.sinks.duckdb_store import DuckDBStore
from backbeat.transport.jsonl import JsonlSource, discover
from backbeat.transport.kafka.settings import KafkaSettings

pytestmark = pytest.mark.integration

STREAM = (
    sys.executable,
    "-X",
    "faulthandler",
    "-m",
    "backbeat.cli",
    "--json",
    "--log-level",
    "INFO",
    "stream",
)
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
    store = DuckDBStore.in_dir(folder / "store")
    pipeline = Pipeline(JsonlSource(discover([folder / "in"])), store, EngineSettings())
    try:
        report = pipeline.run()
        metrics = {m.name: store.metric(m.name).to_pylist() for m in METRICS}
    finally:
        pipeline.close()
        store.close()
    assert report.accepted == sum(counts.values()) > 60_000
    return report.accepted, metrics


def _stream(kafka: KafkaSettings, store: Path, *extra: str) -> list[str]:
    return [
        *STREAM,
        "--bootstrap-servers", kafka.bootstrap_servers,
        "--topic-prefix", kafka.topic_prefix,
        "--store", str(store),
        "--until-end",
        *extra,
    ]  # fmt: skip


def _kill_after_a_commit(proc: subprocess.Popen[bytes], log: Path, seen: int, delay: float) -> int:
    """Wait for the run's first committed batch (its INFO log line), then ``delay`` more
    seconds, then kill -9: a kill lands mid-stream however slow the machine is."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if b"committed batch" in log.read_bytes()[seen:]:
            time.sleep(delay)
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    return proc.wait()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
    return {**env, "BACKBEAT_KAFKA_EXTRA": '{"log_level": "3"}'}


def _committed(store_dir: Path) -> int:
    if not (store_dir / "backbeat.duckdb").exists():
        return 0
    store = DuckDBStore.in_dir(store_dir, read_only=True)
    try:
        row = store.sql("SELECT coalesce(sum(events_in), 0) AS n FROM meta_batches").to_pylist()
        return int(row[0]["n"])
    finally:
        store.close()


def _check(store_dir: Path, reference: tuple[int, dict[str, list[Any]]]) -> None:
    events, metrics = reference
    store = DuckDBStore.in_dir(store_dir, read_only=True)
    try:
        committed = store.sql(
            "SELECT coalesce(sum(events_in), 0) AS n, coalesce(sum(accepted), 0) AS a "
            "FROM meta_batches"
        ).to_pylist()[0]
        wrong = [m.name for m in METRICS if store.metric(m.name).to_pylist() != metrics[m.name]]
    finally:
        store.close()
    assert (committed["n"], committed["a"]) == (events, events), "lost or doubled events"
    assert not wrong, f"metrics differ from the JSONL run: {wrong}"


def test_kafka_stream_equals_jsonl_stream(
    topics: KafkaSettings, reference: tuple[int, dict[str, list[Any]]], tmp_path: Path
) -> None:
    report = wiring.produce_to_kafka(RUN, topics, progress=False)
    assert (report.delivered, report.failed) == (reference[0], 0)
    done = subprocess.run(
        _stream(topics, tmp_path / "store"), capture_output=True, env=_env(), timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    summary = json.loads(done.stdout.splitlines()[-1])
    assert (summary["events_in"], summary["dead"], summary["stopped_by"]) == (
        reference[0],
        0,
        "exhausted",
    )
    _check(tmp_path / "store", reference)


def test_kill9_during_kafka_stream_loses_and_doubles_nothing(
    topics: KafkaSettings, reference: tuple[int, dict[str, list[Any]]], tmp_path: Path
) -> None:
    wiring.produce_to_kafka(RUN, topics, progress=False)
    store = tmp_path / "store"
    command = _stream(topics, store, "--batch-size", "4000")
    rng = np.random.default_rng(5)
    killed, progress = 0, []
    log = tmp_path / "stream.log"
    for _ in range(4):
        with log.open("ab") as out:
            seen = log.stat().st_size if log.exists() else 0
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_env())
            code = _kill_after_a_commit(proc, log, seen, float(rng.uniform(0.0, 1.0)))
        assert code in (0, -signal.SIGKILL), log.read_bytes()[-3000:].decode(errors="replace")
        killed += code == -signal.SIGKILL
        progress.append(_committed(store))
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, env=_env(), timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert killed >= 2, f"only {killed} runs were killed before the end of the topics"
    assert time.monotonic() - started < 120
    assert any(0 < n < reference[0] for n in progress), f"no kill mid-way: {progress}"
    _check(store, reference)
