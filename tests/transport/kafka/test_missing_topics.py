"""Topics that do not exist yet, as a user meets them on a fresh broker: ``produce`` creates
the topics it writes (even one it has no event for yet), ``stream`` waits for a topic that is
not there (saying so once, reading the others meanwhile, Ctrl-C still stops it) and takes it in
when it appears, and ``stream --until-end`` reads a missing topic as empty instead of waiting.

Next: ``backbeat.transport.kafka.awaited``, ``backbeat.wiring.produce``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backbeat import wiring
from backbeat.events.schema import Topic
from backbeat.simulate.simulator import SimulatorSettings
from backbeat.transport.kafka.admin import list_topics
from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.kafka import (
    clean_env,
    committed,
    settings_for,
    stream_command,
    wait_for_commits,
    wait_for_log,
)
from tests.support.kafka_log import read_topics

pytestmark = pytest.mark.integration

RUN = SimulatorSettings(
    users=3_000,
    seed=5,
    start=datetime(2026, 1, 5, 10, tzinfo=UTC),
    end=datetime(2026, 1, 5, 12, tzinfo=UTC),
)
EARLY = {Topic.LISTEN, Topic.PAGE_VIEW, Topic.AUTH}
WAITING = b"exist yet: waiting for"


def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "backbeat", "--json", *args],
        capture_output=True, env=clean_env(), timeout=300, check=False,
    )  # fmt: skip


def _kafka_flags(kafka: KafkaSettings) -> tuple[str, ...]:
    return ("--bootstrap-servers", kafka.bootstrap_servers, "--topic-prefix", kafka.topic_prefix)


def test_produce_then_stream_on_a_fresh_broker(kafka: KafkaSettings, tmp_path: Path) -> None:
    """The issue's report: 100 events hold no status change, yet every topic ``produce``
    writes exists afterwards, so ``stream`` reads them all (it stopped with "no such topic")."""
    done = _run(
        "produce", *_kafka_flags(kafka), "--users", "2000", "--seed", "1", "--total", "100",
        "--start", "2026-01-05T12:00:00Z", "--end", "2026-01-05T12:10:00Z",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert json.loads(done.stdout)["delivered"] == 100
    names = [kafka.topic(t.value) for t in Topic]
    assert set(names) <= set(list_topics(kafka))
    status = kafka.topic(Topic.STATUS_CHANGE.value)
    assert read_topics(kafka.bootstrap_servers, [status]) == []  # the case of the report
    store = tmp_path / "store"
    done = subprocess.run(
        stream_command(kafka, store, "--until-end"), capture_output=True, env=clean_env(),
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert json.loads(done.stdout.splitlines()[-1])["events_in"] == 100
    assert b"exist" not in done.stderr  # nothing missing, nothing awaited
    assert committed(store) == (100, 100)


def test_stream_waits_for_topics_and_reads_them_as_they_appear(
    kafka_servers: str, tmp_path: Path
) -> None:
    """Nothing exists when the stream starts; three topics appear with their events, then the
    fourth: every event is counted once, and Ctrl-C stops the stream as usual."""
    kafka = settings_for(kafka_servers)
    store, log = tmp_path / "store", tmp_path / "stream.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            stream_command(kafka, store, "--batch-size", "2000"), stdout=subprocess.PIPE,
            stderr=err, env=clean_env(),
        )  # fmt: skip
        try:
            assert wait_for_log(proc, log, WAITING), log.read_text()[-3000:]
            first = wiring.produce_to_kafka(RUN, kafka, EARLY, progress=False)
            assert wait_for_commits(proc, log, first.delivered), log.read_text()[-3000:]
            last = wiring.produce_to_kafka(RUN, kafka, {Topic.STATUS_CHANGE}, progress=False)
            assert last.delivered > 0
            total = first.delivered + last.delivered
            assert wait_for_commits(proc, log, total), log.read_text()[-3000:]
        finally:
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    report = json.loads(out.splitlines()[-1])
    assert (report["events_in"], report["stopped_by"]) == (total, "interrupted")
    assert committed(store)[0] == total, "lost or doubled events"
    names = ", ".join(kafka.topic(t.value) for t in Topic)
    assert text.count(f"topics {names} do not exist yet: waiting for them") == 1, text[-3000:]
    assert text.count("appeared: reading its") == len(Topic), text[-3000:]


def test_ctrl_c_stops_a_stream_waiting_for_topics(kafka: KafkaSettings, tmp_path: Path) -> None:
    log = tmp_path / "stream.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            stream_command(kafka, tmp_path / "store"), stdout=subprocess.PIPE, stderr=err,
            env=clean_env(),
        )  # fmt: skip
        try:
            assert wait_for_log(proc, log, WAITING), log.read_text()[-3000:]
        finally:
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert json.loads(out.splitlines()[-1])["stopped_by"] == "interrupted"


def test_until_end_reads_a_missing_topic_as_empty(kafka: KafkaSettings, tmp_path: Path) -> None:
    report = wiring.produce_to_kafka(RUN, kafka, EARLY, progress=False)
    done = subprocess.run(
        stream_command(kafka, tmp_path / "store", "--until-end"), capture_output=True,
        env=clean_env(), timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    summary = json.loads(done.stdout.splitlines()[-1])
    assert (summary["events_in"], summary["stopped_by"]) == (report.delivered, "exhausted")
    status = kafka.topic(Topic.STATUS_CHANGE.value)
    line = f"topic {status} does not exist: read as empty (a bounded run does not wait)"
    assert done.stderr.decode().count(line) == 1, done.stderr.decode()[-3000:]


def test_until_end_with_no_topic_at_all_stops_at_once(kafka: KafkaSettings, tmp_path: Path) -> None:
    done = subprocess.run(
        stream_command(kafka, tmp_path / "store", "--until-end"), capture_output=True,
        env=clean_env(), timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    summary = json.loads(done.stdout.splitlines()[-1])
    assert (summary["events_in"], summary["stopped_by"]) == (0, "exhausted")
    assert b"do not exist: read as empty" in done.stderr
