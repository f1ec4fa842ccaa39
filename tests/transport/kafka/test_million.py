"""1 M events through Kafka, checked against the independent oracle: one uninterrupted
``backbeat stream``, and one killed with SIGKILL at ten random moments and restarted.

``backbeat produce`` (a child process, exactly as a user runs it) puts a simulated run of
1.04 M events into 3 partitions per topic, once for the module; meanwhile the same run (the
simulator is deterministic) is written as JSONL files and ``oracle.compute`` (DuckDB SQL
written from the semantics, not the engine) computes every metric over them. Each
``backbeat stream --until-end`` (child processes, each with its own store) must commit every
event exactly once and store every metric equal to the oracle's. About 3 minutes on 2 cores
(``pytest -s`` prints where the time goes).

Next: ``test_pause.py`` (a paused broker), ``tests/engine/test_kill9.py`` (the file version).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from backbeat import wiring
from backbeat.simulate.simulator import SimulatorSettings
from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.harness import metric_mismatches
from tests.support.kafka import (
    clean_env,
    committed,
    settings_for,
    stream_command,
    wait_for_commits,
    with_topics,
)
from tests.support.oracle import Expected, compute

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUN = SimulatorSettings(
    users=20_000,
    seed=5,
    start=datetime(2026, 1, 5, tzinfo=UTC),
    end=datetime(2026, 1, 5, 19, tzinfo=UTC),
)
"""1,040,215 events."""
KILLS = 10
KILL_BATCH = 25_000


@pytest.fixture(scope="module")
def million(
    kafka_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[KafkaSettings, Expected]:
    """Topics holding the events ``backbeat produce`` made, and the oracle's results over the
    same (deterministic) simulated run, computed while the producer runs."""
    kafka = with_topics(settings_for(kafka_servers))
    started = time.monotonic()
    producer = subprocess.Popen(
        [sys.executable, "-m", "backbeat", "--json", "produce",
         "--bootstrap-servers", kafka.bootstrap_servers, "--topic-prefix", kafka.topic_prefix,
         "--users", str(RUN.users), "--seed", str(RUN.seed), "--start", RUN.start.isoformat(),
         "--end", str(RUN.end and RUN.end.isoformat())],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("million") / "events"
    counts = wiring.write_jsonl_run(RUN, folder, progress=False)
    expected = compute(folder, {})
    computed = time.monotonic()
    out, err = producer.communicate(timeout=600)
    assert producer.returncode == 0, err.decode()[-3000:]
    report = json.loads(out.splitlines()[-1])
    events = sum(counts.values())
    assert (report["delivered"], report["failed"]) == (events, 0), report
    assert events >= 1_000_000
    assert not any(expected.late.values())
    assert not any(expected.duplicates.values())
    print(
        f"\noracle over {events:,} events in {computed - started:.1f}s; "
        f"produced in {time.monotonic() - started:.1f}s"
    )
    return kafka, expected


def _exact(store: Path, expected: Expected) -> None:
    events = sum(expected.valid.values())
    assert committed(store) == (events, events), "lost or doubled events"
    problems = metric_mismatches(store, expected)
    assert not problems, "\n".join(problems)


def test_a_million_events_equal_the_oracle(
    million: tuple[KafkaSettings, Expected], tmp_path: Path
) -> None:
    kafka, expected = million
    events = sum(expected.valid.values())
    started = time.monotonic()
    done = subprocess.run(
        stream_command(kafka, tmp_path / "store", "--until-end"), capture_output=True,
        env=clean_env(), timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    print(f"\nstreamed {events:,} events in {time.monotonic() - started:.1f}s")
    summary = json.loads(done.stdout.splitlines()[-1])
    assert (summary["events_in"], summary["accepted"], summary["dead"]) == (events, events, 0)
    assert summary["stopped_by"] == "exhausted"
    _exact(tmp_path / "store", expected)


def test_kill9_ten_times_during_a_million_events(
    million: tuple[KafkaSettings, Expected], tmp_path: Path
) -> None:
    """Each kill lands at a random point between 2 % and 90 % of the events (by the commits
    the run has logged, so the spread does not depend on the machine's speed), plus a random
    fraction of a second: inside a batch, a commit or a fetch."""
    kafka, expected = million
    events = sum(expected.valid.values())
    store, log = tmp_path / "store", tmp_path / "stream.log"
    command = stream_command(kafka, store, "--until-end", "--batch-size", str(KILL_BATCH))
    rng = np.random.default_rng(17)
    targets = np.sort(rng.uniform(0.02, 0.9, KILLS)) * events
    progress: list[int] = []
    started = time.monotonic()
    for kill, target in enumerate(targets, 1):
        before = progress[-1] if progress else 0
        seen = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=clean_env())
            if wait_for_commits(proc, log, max(1, int(target) - before), seen):
                time.sleep(float(rng.uniform(0.0, 0.5)))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            code = proc.wait()
        tail = log.read_bytes()[-3000:].decode(errors="replace")
        assert code == -signal.SIGKILL, f"run {kill} was not killed (exit {code}):\n{tail}"
        progress.append(committed(store)[0])
        print(f"kill {kill:2d}: {progress[-1]:,} events committed ({progress[-1] / events:.0%})")
    assert progress == sorted(set(progress)), progress  # every run committed something
    assert progress[-1] < events, progress
    with log.open("ab") as out:  # the rest in batches of the default size
        done = subprocess.run(
            stream_command(kafka, store, "--until-end"), stdout=out, stderr=subprocess.STDOUT,
            env=clean_env(), timeout=600, check=False,
        )  # fmt: skip
    assert done.returncode == 0, log.read_bytes()[-3000:].decode(errors="replace")
    print(f"10 kills and the final run: {time.monotonic() - started:.1f}s")
    _exact(store, expected)
