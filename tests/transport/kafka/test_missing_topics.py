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
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


def _until_end(kafka: KafkaSettings, store: Path) -> tuple[dict[str, Any], str]:
    """``stream --until-end``: its report and its log (it must exit 0)."""
    done = subprocess.run(
        stream_command(kafka, store, "--until-end"), capture_output=True, env=clean_env(),
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return json.loads(done.stdout.splitlines()[-1]), done.stderr.decode()


@contextmanager
def _streaming(kafka: KafkaSettings, folder: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``stream`` (not bounded) into ``folder/store``, logging to ``folder/stream.log``;
    stopped with Ctrl-C (SIGINT) on the way out, its report then in ``folder/report.json``."""
    with (folder / "stream.log").open("wb") as err, (folder / "report.json").open("wb") as out:
        proc = subprocess.Popen(
            stream_command(kafka, folder / "store", "--batch-size", "2000"), stdout=out,
            stderr=err, env=clean_env(),
        )  # fmt: skip
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)


def _stopped(folder: Path, proc: subprocess.Popen[bytes]) -> tuple[dict[str, Any], str]:
    """The report and log of a stream stopped by Ctrl-C (it must exit 0)."""
    log = (folder / "stream.log").read_text()
    assert proc.returncode == 0, log[-3000:]
    return json.loads((folder / "report.json").read_bytes().splitlines()[-1]), log


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
    report, log = _until_end(kafka, tmp_path / "store")
    assert report["events_in"] == 100
    assert "exist" not in log  # nothing missing, nothing awaited
    assert committed(tmp_path / "store") == (100, 100)


def test_stream_waits_for_topics_and_reads_them_as_they_appear(
    kafka_servers: str, tmp_path: Path
) -> None:
    """Nothing exists when the stream starts; three topics appear with their events, then the
    fourth: every event is counted once, and Ctrl-C stops the stream as usual."""
    kafka = settings_for(kafka_servers)
    log = tmp_path / "stream.log"
    with _streaming(kafka, tmp_path) as proc:
        assert wait_for_log(proc, log, WAITING), log.read_text()[-3000:]
        first = wiring.produce_to_kafka(RUN, kafka, EARLY, progress=False)
        assert wait_for_commits(proc, log, first.delivered), log.read_text()[-3000:]
        last = wiring.produce_to_kafka(RUN, kafka, {Topic.STATUS_CHANGE}, progress=False)
        assert last.delivered > 0
        total = first.delivered + last.delivered
        assert wait_for_commits(proc, log, total), log.read_text()[-3000:]
    report, text = _stopped(tmp_path, proc)
    assert (report["events_in"], report["stopped_by"]) == (total, "interrupted")
    assert committed(tmp_path / "store")[0] == total, "lost or doubled events"
    names = ", ".join(kafka.topic(t.value) for t in Topic)
    assert text.count(f"topics {names} do not exist yet: waiting for them") == 1, text[-3000:]
    assert text.count("appeared: reading its") == len(Topic), text[-3000:]


def test_ctrl_c_stops_a_stream_waiting_for_topics(kafka: KafkaSettings, tmp_path: Path) -> None:
    with _streaming(kafka, tmp_path) as proc:
        assert wait_for_log(proc, tmp_path / "stream.log", WAITING)
    report, _ = _stopped(tmp_path, proc)
    assert (report["events_in"], report["stopped_by"]) == (0, "interrupted")


def test_until_end_reads_a_missing_topic_as_empty(kafka: KafkaSettings, tmp_path: Path) -> None:
    produced = wiring.produce_to_kafka(RUN, kafka, EARLY, progress=False)
    report, log = _until_end(kafka, tmp_path / "store")
    assert (report["events_in"], report["stopped_by"]) == (produced.delivered, "exhausted")
    status = kafka.topic(Topic.STATUS_CHANGE.value)
    line = f"topic {status} does not exist: read as empty (a bounded run does not wait)"
    assert log.count(line) == 1, log[-3000:]


def test_until_end_with_no_topic_at_all_stops_at_once(kafka: KafkaSettings, tmp_path: Path) -> None:
    report, log = _until_end(kafka, tmp_path / "store")
    assert (report["events_in"], report["stopped_by"]) == (0, "exhausted")
    assert "do not exist: read as empty" in log
