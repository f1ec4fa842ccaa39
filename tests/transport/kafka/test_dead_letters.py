"""Malformed records produced raw into a topic: dead letters in the store AND in
``<topic>.dlq`` (original bytes, reason and source headers); valid records around them count.

Next: ``backbeat.transport.kafka.dead_letters`` (the producer), ``tests/support/malformed.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer

from backbeat.events.codec import encode_table
from backbeat.events.schema import Topic
from backbeat.simulate.simulator import Simulator, SimulatorSettings
from backbeat.sinks.duckdb_store import DuckDBStore
from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.kafka_log import read_topics
from tests.support.malformed import CATEGORIES

pytestmark = pytest.mark.integration

STREAM = (sys.executable, "-m", "backbeat.cli", "--json", "stream")


def _records() -> tuple[list[bytes], dict[int, tuple[str, tuple[str, ...]]]]:
    """Valid listen events with malformed ones between them; index -> (category, reasons)."""
    run = SimulatorSettings(
        users=500, seed=3, start=datetime(2026, 1, 5, tzinfo=UTC),
        end=datetime(2026, 1, 5, 2, tzinfo=UTC),
    )  # fmt: skip
    listens = Simulator(run).run()[Topic.LISTEN]
    valid = encode_table(Topic.LISTEN, listens).split(b"\n")[:-1]
    rows = listens.to_pylist()
    rng = np.random.default_rng(9)
    out: list[bytes] = []
    bad: dict[int, tuple[str, tuple[str, ...]]] = {}
    names = [n for n, c in CATEGORIES.items() if Topic.LISTEN in c.topics]
    for i, line in enumerate(valid):
        out.append(line)
        if i % 7 == 3:
            name = names[len(bad) % len(names)]
            bad[len(out)] = (name, CATEGORIES[name].prefixes)
            if name == "too_large":  # > 64 KiB, yet under Kafka's 1 MB message limit
                out.append(json.dumps(rows[i] | {"city": "x" * 100_000}).encode())
            else:
                out.append(CATEGORIES[name].build(rng, Topic.LISTEN, rows[i]))
    return out, bad


def test_malformed_records_go_to_the_store_and_the_dlq_topic(
    topics: KafkaSettings, tmp_path: Path
) -> None:
    records, bad = _records()
    source = topics.topic(Topic.LISTEN.value)
    producer = Producer({"bootstrap.servers": topics.bootstrap_servers, "log_level": 3})
    for record in records:  # one partition: offsets are the record indexes
        producer.produce(source, value=record, partition=1)
    assert producer.flush(30) == 0
    del producer

    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
    done = subprocess.run(
        [*STREAM, "--bootstrap-servers", topics.bootstrap_servers, "--topic-prefix",
         topics.topic_prefix, "--store", str(tmp_path / "store"), "--until-end",
         "--batch-size", "700"],
        capture_output=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["accepted"] == len(records) - len(bad)
    assert summary["dead"] == len(bad)

    store = DuckDBStore.in_dir(tmp_path / "store", read_only=True)
    try:
        stored = store.sql(
            'SELECT partition, "offset", reason, raw FROM dead_letters ORDER BY 2'
        ).to_pylist()
    finally:
        store.close()
    assert [r["offset"] for r in stored] == sorted(bad)
    for row in stored:
        category, prefixes = bad[row["offset"]]
        assert row["partition"] == f"kafka:{source}:1"
        assert row["reason"].startswith(prefixes), (category, row["reason"])
        assert row["raw"] == records[row["offset"]]

    dlq = [(r.value, r.headers) for r in read_topics(topics.bootstrap_servers, [source + ".dlq"])]
    assert sorted(int(h["source.offset"]) for _, h in dlq) == sorted(bad)
    for value, headers in dlq:
        offset = int(headers["source.offset"])
        assert (headers["source.topic"], headers["source.partition"]) == (source, "1")
        assert headers["reason"].startswith(bad[offset][1])
        assert value == records[offset]
