"""``backbeat demo --bootstrap-servers``: the simulator produces into the broker while the
engine streams the topics into the store; --duration and Ctrl-C stop both cleanly.

Each run is checked against the log itself, read back independently: every record the
producer reports delivered is in the topics (it flushed), and the engine counted exactly the
records before its committed offsets, from where this run's records start (a second run on
the same topics skips the first run's records by their Kafka timestamps), none twice.

Next: ``backbeat.wiring.KafkaDemo``, ``test_start_from.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from backbeat.events.schema import Topic
from backbeat.sinks.queries import BatchTotals
from backbeat.transport.kafka.settings import KafkaSettings
from backbeat.transport.kafka.source import parse_partition_name
from tests.support.kafka_log import read_topics
from tests.support.stores import ask, duck_sql

pytestmark = pytest.mark.integration

DEMO = (sys.executable, "-m", "backbeat", "--json", "--log-level", "INFO", "demo", "--no-web")


def _command(kafka: KafkaSettings, store: Path, *extra: str) -> list[str]:
    return [*DEMO, "--bootstrap-servers", kafka.bootstrap_servers, "--topic-prefix",
            kafka.topic_prefix, "--users", "3000", "--store", str(store), *extra]  # fmt: skip


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
    return {**env, "BACKBEAT_KAFKA_EXTRA": '{"log_level": "3"}'}


def _log_sizes(kafka: KafkaSettings) -> Counter[tuple[str, int]]:
    """Records per partition of the four event topics."""
    records = read_topics(kafka.bootstrap_servers, [kafka.topic(t.value) for t in Topic])
    return Counter((r.topic, r.partition) for r in records)


def _committed(store_dir: Path) -> tuple[int, int, dict[tuple[str, int], int]]:
    """(events, accepted, position per Kafka partition) that the store committed."""
    totals = ask(store_dir, BatchTotals())[0]
    rows = duck_sql(store_dir, "SELECT partition, position FROM meta_partitions")
    positions = {parse_partition_name(r["partition"]): r["position"] for r in rows}
    assert None not in positions
    return totals["events_in"], totals["accepted"], positions


def _check(summary: dict[str, Any], store: Path, before: Counter[tuple[str, int]]) -> None:
    """The run counted each record between the log's end before it and its commit once."""
    events, accepted, positions = _committed(store)
    assert summary["failed"] == 0
    assert 0 < summary["events_in"] == events == accepted <= summary["delivered"]
    assert all(offset >= before[key] for key, offset in positions.items())
    assert sum(offset - before[key] for key, offset in positions.items()) == events


def test_demo_through_kafka_counts_each_delivered_event_once(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    done = subprocess.run(
        _command(kafka, store, "--duration", "6"),
        capture_output=True, env=_env(), timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    first = json.loads(done.stdout)
    assert first["stopped_by"] == "timeout"
    _check(first, store, Counter())
    after_first = _log_sizes(kafka)
    assert sum(after_first.values()) == first["delivered"]

    log = tmp_path / "second.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            _command(kafka, store), stdout=subprocess.PIPE, stderr=err, env=_env()
        )
        deadline = time.monotonic() + 60
        while b"committed batch 3:" not in log.read_bytes() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_bytes()[-3000:].decode(errors="replace")
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, log.read_bytes()[-3000:].decode(errors="replace")
    second = json.loads(out)
    assert second["stopped_by"] == "interrupted"
    _check(second, store, after_first)
    assert sum(_log_sizes(kafka).values()) == first["delivered"] + second["delivered"]
