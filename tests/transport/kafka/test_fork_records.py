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
from backbeat.simulate.catalog import Catalog
from backbeat.simulate.catalog_file import load_catalog
from backbeat.simulate.simulator import Simulator, SimulatorSettings
from backbeat.sinks.queries import DeadLetterCounts
from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.catalogs import write_kaggle_csv
from tests.support.kafka import clean_env, stream_command
from tests.support.oracle import _COLUMNS, QUERIES, _rows
from tests.support.stores import all_metrics, ask

pytestmark = pytest.mark.integration

ADDITIONS = {
    "eventId", "schemaVersion", "trackId", "album", "genre", "platform", "country", "mood",
    "msPlayed", "listenPct", "completed", "skipped", "rating",
}  # fmt: skip
RESTORED = frozenset({"trackId", "genre", "mood"})
"""The additions a tracks catalog gives back to a listen (``engine/enrich.py``; the fork's
records carry ``duration`` already)."""
START = datetime(2026, 3, 9, 10, tzinfo=UTC)


def _simulated(catalog: Catalog | None = None) -> dict[Topic, list[dict[str, Any]]]:
    """Two simulated hours of every topic, as backbeat writes them."""
    settings = SimulatorSettings(
        users=300, seed=23, start=START, end=START + timedelta(hours=2), catalog=catalog
    )
    records: dict[Topic, list[dict[str, Any]]] = {t: [] for t in Topic}
    for step in Simulator(settings).batches(step_ms=600_000):
        for topic, table in step.tables.items():
            records[topic] += [
                orjson.loads(line) for line in encode_table(topic, table).splitlines()
            ]
    return records


def _as_fork(
    records: dict[Topic, list[dict[str, Any]]], keep: frozenset[str] = frozenset()
) -> dict[Topic, list[dict[str, Any]]]:
    """The same records as the fork writes them: backbeat's additions left out (but ``keep``)."""
    dropped = ADDITIONS - keep
    return {
        topic: [{k: v for k, v in r.items() if k not in dropped} for r in rows]
        for topic, rows in records.items()
    }


def _produce(topics: KafkaSettings, records: dict[Topic, list[dict[str, Any]]]) -> None:
    producer = Producer({"bootstrap.servers": topics.bootstrap_servers, "log_level": 3})
    for topic, rows in records.items():
        for row in rows:
            key = f"u{row['userId']}" if row.get("userId") is not None else f"s{row['sessionId']}"
            producer.produce(topics.topic(topic.value), value=json.dumps(row), key=key)
    assert producer.flush(60) == 0


def _stream(topics: KafkaSettings, store: Path, *extra: str) -> dict[str, Any]:
    done = subprocess.run(
        [*stream_command(topics, store, *extra), "--until-end"],
        capture_output=True, env=clean_env(), timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return report


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
    records = _as_fork(_simulated())
    assert all("eventId" not in r for rows in records.values() for r in rows)
    _produce(topics, records)
    store = tmp_path / "store"
    report = _stream(topics, store)
    total = sum(len(rows) for rows in records.values())
    assert (report["events_in"], report["accepted"], report["dead"]) == (total, total, 0)
    expected = _expected(records, tmp_path)
    stored = all_metrics(store)
    wrong = [name for name in expected if stored[name] != expected[name]]
    assert not wrong, f"metrics differ: {wrong}"
    unknown = [r for r in stored["genre_minute"] if r["genre"] == "unknown"]
    assert sum(r["plays"] for r in unknown) == len(records[Topic.LISTEN])
    assert ask(store, DeadLetterCounts()) == []


def test_a_catalog_gives_fork_listens_back_their_track_and_genre(
    topics: KafkaSettings, tmp_path: Path
) -> None:
    tracks = tmp_path / "tracks.csv"
    write_kaggle_csv(tracks, n_tracks=300, n_genres=6)
    original = _simulated(load_catalog(tracks))
    _produce(topics, _as_fork(original))
    store = tmp_path / "store"
    report = _stream(topics, store, "--catalog", str(tracks))
    assert report["dead"] == 0
    # as if the records had kept the additions a catalog gives back (track, genre, mood); the
    # listening ones (% listened, completed, skipped) stay missing, as the fork wrote them
    restored = _as_fork(original, keep=RESTORED)
    want = _expected(restored, tmp_path)
    stored = all_metrics(store)
    for name in ("genre_minute", "song_minute", "artist_minute"):
        assert stored[name] == want[name], name
