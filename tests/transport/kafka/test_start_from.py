"""``backbeat stream --from <ISO time>``: partitions without a stored position start at the
first record whose Kafka timestamp is at or after the time; stored positions always win.

Three runs of listen events go to the same partitions with explicit Kafka timestamps: run A
(3 h ago), run B (2 h ago), then, after a first stream, run C stamped *older* than both (4 h
ago). The first stream starts ``--from`` between A and B (a time without a zone, read as UTC
even where the local zone is not) and must count B only; the restart gives a ``--from``
after everything and must still read C, because every partition resumes at its stored offset.

Next: ``backbeat.transport.kafka.seek`` (the look-up), ``test_roundtrip.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from confluent_kafka import Producer

from backbeat.events.codec import encode_table
from backbeat.events.schema import Topic
from backbeat.simulate.simulator import Simulator, SimulatorSettings
from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.stores import metric_rows

pytestmark = pytest.mark.integration

STREAM = (sys.executable, "-m", "backbeat", "--json", "stream")
HOUR_MS = 3_600_000


def _produce(kafka: KafkaSettings, listens: pa.Table, timestamp_ms: int) -> None:
    """Every listen to the 3 partitions in turn, all stamped ``timestamp_ms``."""
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "log_level": 3})
    topic = kafka.topic(Topic.LISTEN.value)
    for i, value in enumerate(encode_table(Topic.LISTEN, listens).split(b"\n")[:-1]):
        producer.produce(topic, value=value, partition=i % 3, timestamp=timestamp_ms)
    assert producer.flush(30) == 0


def _stream(kafka: KafkaSettings, store: Path, start: str) -> dict[str, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
    done = subprocess.run(
        [*STREAM, "--bootstrap-servers", kafka.bootstrap_servers, "--topic-prefix",
         kafka.topic_prefix, "--topics", Topic.LISTEN.value, "--store", str(store),
         "--until-end", "--from", start],
        capture_output=True, env={**env, "TZ": "Asia/Tokyo"}, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    summary: dict[str, int] = json.loads(done.stdout.splitlines()[-1])
    return summary


def _plays(listens: pa.Table) -> Counter[tuple[int, str]]:
    ts, genres = listens["ts"].to_pylist(), listens["genre"].to_pylist()
    return Counter((t - t % 60_000, g) for t, g in zip(ts, genres, strict=True))


def test_from_a_time_counts_later_records_only_and_stored_positions_win(
    topics: KafkaSettings, tmp_path: Path
) -> None:
    run = SimulatorSettings(
        users=1500, seed=13, start=datetime(2026, 1, 7, 9, tzinfo=UTC),
        end=datetime(2026, 1, 7, 12, tzinfo=UTC),
    )  # fmt: skip
    listens = Simulator(run).run()[Topic.LISTEN]
    third = listens.num_rows // 3
    a, b, c = listens.slice(0, third), listens.slice(third, third), listens.slice(2 * third)
    now_ms = int(time.time() * 1000)
    _produce(topics, a, now_ms - 3 * HOUR_MS)
    _produce(topics, b, now_ms - 2 * HOUR_MS)

    between = datetime.fromtimestamp((now_ms - 2.5 * HOUR_MS) / 1000, UTC).replace(tzinfo=None)
    first = _stream(topics, tmp_path / "store", between.isoformat(timespec="seconds"))
    assert (first["events_in"], first["accepted"]) == (b.num_rows, b.num_rows)

    _produce(topics, c, now_ms - 4 * HOUR_MS)
    later = datetime.fromtimestamp(now_ms / 1000 + 3600, timezone(timedelta(hours=2)))
    second = _stream(topics, tmp_path / "store", later.isoformat(timespec="seconds"))
    assert (second["events_in"], second["accepted"]) == (c.num_rows, c.num_rows)

    stored = {
        (r["window_start"], r["genre"]): r["plays"]
        for r in metric_rows(tmp_path / "store", "genre_minute")
    }
    assert stored == dict(_plays(b) + _plays(c))
