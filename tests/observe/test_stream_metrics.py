"""``backbeat stream --metrics-port`` scraped while it runs against a real Kafka-protocol
broker: the consumer lag rises when a backlog lands and falls back to zero once read, every
committed batch is in the latency histogram, dead letters are counted by kind of reason, and
``--log-format json`` makes every log line one JSON object.

Next: ``backbeat.observe.metrics``, ``test_metrics.py`` (the same metrics in process).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from backbeat.events.schema import Topic
from backbeat.simulate.simulator import Simulator, SimulatorSettings
from backbeat.transport.kafka import producer as records_of
from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.kafka import clean_env, stream_command, wait_for_log

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def _listens() -> list[bytes]:
    """A few thousand listen events, as a producer writes them."""
    run = SimulatorSettings(
        users=400,
        seed=5,
        start=datetime(2026, 1, 5, tzinfo=UTC),
        end=datetime(2026, 1, 5, 6, tzinfo=UTC),
    )
    table = Simulator(run).run()[Topic.LISTEN]
    values: list[bytes] = records_of.records(Topic.LISTEN, table)[0].to_pylist()
    return values


@pytest.fixture
def stream(topics: KafkaSettings, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A running stream with metrics on a free port: (metrics URL, its log)."""
    log = tmp_path / "stream.log"
    command = stream_command(topics, tmp_path / "store", "--batch-size", "200",
                             "--metrics-port", "0")  # fmt: skip
    command.insert(command.index("--log-level"), "--log-format")
    command.insert(command.index("--log-level"), "json")
    with log.open("wb") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=clean_env())
    try:
        assert wait_for_log(proc, log, b"metrics: http", timeout=60), log.read_text()
        found = re.search(rb"metrics: (http://\S+)", log.read_bytes())
        assert found is not None
        yield found.group(1).decode(), log
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_lag_latency_and_dead_letters_move_as_the_stream_reads(
    stream: tuple[str, Path], topics: KafkaSettings
) -> None:
    url, log = stream
    idle = _scrape(url)
    assert _total(idle, "backbeat_events_in_total") == 0
    assert _total(idle, "backbeat_consumer_lag") == 0  # nothing written yet

    listens = _listens()
    no_ts = {k: v for k, v in json.loads(listens[0]).items() if k != "ts"}
    bad = [b"{not json", json.dumps(no_ts).encode(), b'{"ts": 1}'] * 3
    producer = Producer({"bootstrap.servers": topics.bootstrap_servers, "log_level": 3})
    cluster = topics.topic(Topic.LISTEN.value)
    for i, value in enumerate([*listens, *bad]):  # every partition delivers: a watermark
        while True:
            try:
                producer.produce(cluster, value=value, partition=i % 3)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0
    written = len(listens) + len(bad)

    highest_lag, deadline = 0.0, time.monotonic() + 120
    samples = idle
    while time.monotonic() < deadline:
        samples = _scrape(url)
        highest_lag = max(highest_lag, _total(samples, "backbeat_consumer_lag"))
        if _total(samples, "backbeat_events_in_total") >= written:
            break
        time.sleep(0.05)
    assert _total(samples, "backbeat_events_in_total") == written, log.read_text()[-2000:]
    # the backlog was seen as lag while it was read, and none is left once it is
    assert highest_lag > 0
    deadline = time.monotonic() + 30
    while _total(samples, "backbeat_consumer_lag") and time.monotonic() < deadline:
        samples = _scrape(url)
    assert _total(samples, "backbeat_consumer_lag") == 0
    lagging = [k for k in samples if k[0] == "backbeat_consumer_lag"]
    assert (("partition", "0"), ("topic", cluster)) in [k[1] for k in lagging]

    # every committed batch is in the latency histogram: 200 events a batch at most
    batches = _total(samples, "backbeat_batches_total")
    assert batches >= written / 200
    assert samples[("backbeat_batch_seconds_count", ())] == batches
    assert samples[("backbeat_batch_seconds_sum", ())] > 0
    assert samples[("backbeat_batch_seconds_bucket", (("le", "+Inf"),))] == batches

    # dead letters by kind of reason, the rest accepted
    dead = {k[1][0][1]: v for k, v in samples.items() if k[0] == "backbeat_dead_letters_total"}
    assert dead == {"not_json": 3, "missing_field": 3, "out_of_range": 3}
    assert _total(samples, "backbeat_accepted_total") == len(listens)
    delay = samples[("backbeat_watermark_delay_seconds", (("topic", Topic.LISTEN.value),))]
    assert delay > 300 * 86_400  # events of January 2026 read in December: months behind
    assert _total(samples, "backbeat_sink_errors_total") == 0

    # --log-format json: every log line is one object, the commits among them
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    assert any(r["message"].startswith("committed batch") for r in records)
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
