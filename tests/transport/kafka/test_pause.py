"""The broker paused (SIGSTOP) for 10 s while ``backbeat produce`` and ``backbeat stream`` run,
then resumed (SIGCONT): nothing lost, nothing doubled, both recover without a restart, and
both log the outage (a WARNING while the broker does not answer, an INFO when it is back).

Each test pauses a tansu broker of its own (``own_broker``), so the session's broker and the
other tests are not disturbed; with ``BACKBEAT_TEST_KAFKA`` (a broker we do not own) they skip.

Next: ``backbeat.transport.kafka.health`` (the log lines), ``test_million.py``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from backbeat import wiring
from backbeat.events.schema import Topic
from backbeat.simulate.simulator import SimBatch, Simulator, SimulatorSettings
from backbeat.transport.kafka.producer import EventProducer
from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.harness import metric_mismatches
from tests.support.kafka import (
    Broker,
    clean_env,
    committed,
    settings_for,
    stream_command,
    wait_for_commits,
    with_topics,
)
from tests.support.kafka_log import read_topics
from tests.support.oracle import compute

pytestmark = pytest.mark.integration

PAUSE_S = 10.0
UNREACHABLE = "is not answering the {}"
BACK = "answers the {} again"
RUN = SimulatorSettings(
    users=3_000,
    seed=23,
    start=datetime(2026, 1, 5, 8, tzinfo=UTC),
    end=datetime(2026, 1, 5, 12, tzinfo=UTC),
)


def _pause(broker: Broker) -> None:
    broker.pause()
    try:
        time.sleep(PAUSE_S)
    finally:
        broker.resume()


def _first_record(kafka: KafkaSettings, timeout: float = 60) -> None:
    """Wait until the listen topic holds a record (the producer is delivering)."""
    consumer = Consumer(
        {"bootstrap.servers": kafka.bootstrap_servers, "group.id": "probe", "log_level": 3}
    )
    consumer.assign([TopicPartition(kafka.topic(Topic.LISTEN.value), p, 0) for p in range(3)])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if any(m.error() is None for m in consumer.consume(10, 0.5)):
                return
        raise AssertionError(f"nothing delivered within {timeout:.0f}s")
    finally:
        consumer.close()


def test_broker_paused_during_produce(own_broker: Broker, tmp_path: Path) -> None:
    kafka = with_topics(settings_for(own_broker.servers))
    total = 80_000  # 20 s at 4,000/s: still producing after the pause
    stderr = tmp_path / "produce.log"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backbeat", "--json", "--log-level", "INFO", "produce",
             "--bootstrap-servers", kafka.bootstrap_servers, "--topic-prefix", kafka.topic_prefix,
             "--users", "10000", "--seed", "3", "--start", "2026-01-05T00:00:00Z",
             "--end", "2026-01-06T00:00:00Z", "--rate", "4000", "--total", str(total)],
            stdout=subprocess.PIPE, stderr=err, env=clean_env(),
        )  # fmt: skip
        _first_record(kafka)
        assert proc.poll() is None, "the producer ended before the pause: lower --rate"
        _pause(own_broker)
        assert proc.poll() is None, "the producer ended during the pause: lower --rate"
        out, _ = proc.communicate(timeout=120)
    log = stderr.read_text()
    assert proc.returncode == 0, log[-3000:]
    report = json.loads(out.splitlines()[-1])
    assert (report["produced"], report["delivered"], report["failed"]) == (total, total, 0)
    assert UNREACHABLE.format("producer") in log, log[-3000:]
    assert BACK.format("producer") in log, log[-3000:]

    records = read_topics(kafka.bootstrap_servers, [kafka.topic(t.value) for t in Topic])
    ids = [r.headers["eventId"] for r in records]
    assert len(ids) == total, "lost or doubled records in the log"
    assert len(set(ids)) == total, "an event was written twice"


def test_broker_paused_during_stream(own_broker: Broker, tmp_path: Path) -> None:
    kafka = with_topics(settings_for(own_broker.servers))
    steps = list(Simulator(RUN).batches(step_ms=60_000))
    events = sum(s.n_events for s in steps)
    wiring.write_jsonl_run(RUN, tmp_path / "events", progress=False)
    expected = compute(tmp_path / "events", {})
    _produce(kafka, steps[: len(steps) // 2])  # the first half is there when the stream starts

    store, log = tmp_path / "store", tmp_path / "stream.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            stream_command(kafka, store, "--batch-size", "2000"), stdout=subprocess.PIPE,
            stderr=err, env=clean_env(),
        )  # fmt: skip
        try:
            assert wait_for_commits(proc, log, 1), log.read_text()[-3000:]
            _pause(own_broker)  # while the stream works through the first half, then idles
            _produce(kafka, steps[len(steps) // 2 :])  # the second half after the pause
            assert wait_for_commits(proc, log, events), log.read_text()[-3000:]
        finally:
            proc.send_signal(signal.SIGTERM)  # commits and stops
            out, _ = proc.communicate(timeout=60)
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    assert json.loads(out.splitlines()[-1])["events_in"] == events
    assert UNREACHABLE.format("consumer") in text, text[-3000:]
    assert BACK.format("consumer") in text, text[-3000:]
    assert committed(store) == (events, events), "lost or doubled events"
    problems = metric_mismatches(store, expected)
    assert not problems, "\n".join(problems)


def _produce(kafka: KafkaSettings, steps: list[SimBatch]) -> None:
    producer = EventProducer(kafka)
    for step in steps:
        producer.queue(producer.encode(step.tables))
    report = producer.close()
    assert report.failed == 0, report.reasons
