"""Records in eventsim's Kafka-fork format, without backbeat's additions, through Kafka into
``backbeat stream``: accepted as they are, 0 dead letters, every metric equal to an
independent computation.

The fork's listen records carry ``artist``, ``song``, ``duration``, ``ts``, ``sessionId``,
``auth``, ``level``, ``itemInSession``, ``city``, ``zip``, ``state``, ``userAgent``, ``lon``,
``lat``, ``userId``, ``lastName``, ``firstName``, ``gender``, ``registration``; page views
add ``page``, ``method``, ``status``; auth events ``success``; status changes
``prevLevel``. None has ``eventId``, ``schemaVersion`` or the listen additions (``trackId``,
``genre``, ``platform``, ``listenPct``...): the engine derives ``eventId`` from the record and
counts the rest as unknown. The records are produced by a plain confluent-kafka producer,
and the expected metrics are computed by DuckDB from the same records (the queries of
``support/oracle.py``, which reads no backbeat code).

Next: ``test_kcat.py`` (records from a client we did not write).
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from confluent_kafka import Producer

from backbeat.events.codec import encode_table
from backbeat.events.schema import Topic
from backbeat.simulate.simulator import Simulator, SimulatorSettings
from backbeat.sinks.queries import DeadLetterCounts
from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.kafka import clean_env, stream_command
from tests.support.oracle import _COLUMNS, QUERIES, _rows
from tests.support.stores import all_metrics, ask

pytestmark = pytest.mark.integration

ADDITIONS = {
    "eventId", "schemaVersion", "trackId", "album", "genre", "platform", "country", "mood",
    "msPlayed", "listenPct", "completed", "skipped", "rating",
}  # fmt: skip
START = datetime(2026, 3, 9, 10, tzinfo=UTC)


def _fork_records() -> dict[Topic, list[dict[str, Any]]]:
    """Two simulated hours as the fork writes them: backbeat's additions left out."""
    settings = SimulatorSettings(users=300, seed=23, start=START, end=START + timedelta(hours=2))
    records: dict[Topic, list[dict[str, Any]]] = {t: [] for t in Topic}
    for step in Simulator(settings).batches(step_ms=600_000):
        for topic, table in step.tables.items():
            for line in encode_table(topic, table).splitlines():
                row = orjson.loads(line)
                records[topic].append({k: v for k, v in row.items() if k not in ADDITIONS})
    return records


def _expected(records: dict[Topic, list[dict[str, Any]]], folder: Path) -> dict[str, Any]:
    """Every metric from the records, by DuckDB alone (a clean run: nothing to de-duplicate)."""
    con = duckdb.connect()
    for topic, rows in records.items():
        path = folder / f"{topic.value}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        columns = ", ".join(f"'{c}': '{t}'" for c, t in _COLUMNS[topic.value].items())
        con.execute(
            f"CREATE VIEW fresh_{topic.value} AS SELECT * FROM read_json('{path}', "
            f"format='newline_delimited', columns={{{columns}}})"
        )
    return {name: _rows(con, sql) for name, sql in QUERIES.items()}


def test_fork_records_are_accepted_as_they_are(topics: KafkaSettings, tmp_path: Path) -> None:
    records = _fork_records()
    assert all("eventId" not in r for rows in records.values() for r in rows)
    producer = Producer({"bootstrap.servers": topics.bootstrap_servers, "log_level": 3})
    for topic, rows in records.items():
        for row in rows:
            key = f"u{row['userId']}" if row.get("userId") is not None else f"s{row['sessionId']}"
            producer.produce(topics.topic(topic.value), value=json.dumps(row), key=key)
    assert producer.flush(60) == 0
    store = tmp_path / "store"
    done = subprocess.run(
        [*stream_command(topics, store), "--until-end"],
        capture_output=True, env=clean_env(), timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    total = sum(len(rows) for rows in records.values())
    assert (report["events_in"], report["accepted"], report["dead"]) == (total, total, 0)
    expected = _expected(records, tmp_path)
    stored = all_metrics(store)
    wrong = [name for name in expected if stored[name] != expected[name]]
    assert not wrong, f"metrics differ: {wrong}"
    unknown = [r for r in stored["genre_minute"] if r["genre"] == "unknown"]
    assert sum(r["plays"] for r in unknown) == len(records[Topic.LISTEN])
    assert ask(store, DeadLetterCounts()) == []
