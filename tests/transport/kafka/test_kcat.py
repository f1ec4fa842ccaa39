"""Interop with a Kafka client we did not write: ``kcat`` (Debian package ``kcat``).

kcat reads what ``backbeat produce`` wrote (values that our codec accepts, keys ``u<userId>``
or ``s<sessionId>``, an ``eventId`` header), and records kcat produces, good and malformed,
are counted or dead-lettered by ``backbeat stream`` exactly like our own producer's. ``make
test`` installs kcat (target ``system-deps``); without it these tests skip.

Debian bookworm's kcat links librdkafka 2.0.2, which cannot parse the ApiVersions answer of
the tansu broker the suite starts ("Read underflow"). When the installed kcat cannot reach the
broker, the same kcat binary runs on the newer librdkafka that confluent-kafka ships (a
drop-in: the C ABI of ``librdkafka.so.1`` is stable); against a real Kafka
(``BACKBEAT_TEST_KAFKA``) the system library is used as is.

Next: ``test_dead_letters.py`` (malformed records from our own producer).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import confluent_kafka
import numpy as np
import pytest

from backbeat.events.codec import decode_batch, encode_table
from backbeat.events.schema import Topic
from backbeat.simulate.simulator import Simulator, SimulatorSettings
from backbeat.sinks.queries import DeadLetterRecords
from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.kafka_log import read_topics
from tests.support.malformed import CATEGORIES
from tests.support.stores import ask, metric_rows

pytestmark = pytest.mark.integration

CLI = (sys.executable, "-m", "backbeat", "--json")
FIELDS = ("partition", "offset", "key", "headers", "size", "value")
FORMAT = r"%p\t%o\t%k\t%h\t%S\t%s\n"  # values are compact JSON: no tab, no newline


@dataclass(frozen=True, slots=True)
class Kcat:
    """The kcat binary, talking to one broker, with the environment it needs."""

    binary: str
    servers: str
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [self.binary, "-b", self.servers, "-q", *args],
            capture_output=True, env=self.env, timeout=timeout, check=False,
        )  # fmt: skip


def _bundled_librdkafka(folder: Path) -> Path | None:
    """A folder holding confluent-kafka's own librdkafka under the system name."""
    libs = Path(confluent_kafka.__file__).parent.parent / "confluent_kafka.libs"
    found = sorted(libs.glob("librdkafka*.so*"))
    if not found:
        return None
    (folder / "librdkafka.so.1").symlink_to(found[0])
    return folder


@pytest.fixture(scope="module")
def kcat(kafka_servers: str, tmp_path_factory: pytest.TempPathFactory) -> Kcat:
    binary = shutil.which("kcat")
    if binary is None:
        pytest.skip("kcat is not installed (`make test` installs it as root with apt-get)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
    plain = Kcat(binary, kafka_servers, env)
    probe = plain("-L", "-m", "3")
    if probe.returncode == 0:
        return plain
    lib = _bundled_librdkafka(tmp_path_factory.mktemp("librdkafka"))
    if lib is not None:
        relinked = Kcat(binary, kafka_servers, {**env, "LD_LIBRARY_PATH": str(lib)})
        if relinked("-L", "-m", "10").returncode == 0:
            return relinked
    pytest.fail(f"kcat cannot reach {kafka_servers}: {probe.stderr.decode()[-500:]}")


def _consume(kcat: Kcat, topic: str) -> list[dict[str, Any]]:
    """Every record of ``topic`` as kcat prints it with :data:`FORMAT`."""
    done = kcat("-C", "-t", topic, "-o", "beginning", "-e", "-f", FORMAT)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    rows = [
        dict(zip(FIELDS, line.split(b"\t", 5), strict=True)) for line in done.stdout.splitlines()
    ]
    for row in rows:
        assert int(row["size"]) == len(row["value"]), row
    return rows


def test_kcat_reads_what_backbeat_produce_wrote(topics: KafkaSettings, kcat: Kcat) -> None:
    done = subprocess.run(
        [*CLI, "produce", "--bootstrap-servers", topics.bootstrap_servers, "--topic-prefix",
         topics.topic_prefix, "--users", "1500", "--seed", "8",
         "--start", "2026-01-05T08:00:00Z", "--end", "2026-01-05T10:00:00Z"],
        capture_output=True, env=kcat.env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["failed"] == 0
    read = 0
    for topic in Topic:
        rows = _consume(kcat, topics.topic(topic.value))
        decoded = decode_batch(
            topic, [r["value"] for r in rows], np.arange(len(rows), dtype=np.int64)
        )
        assert decoded.dead == [], decoded.dead[:3]
        assert decoded.table.num_rows == len(rows)
        users = decoded.table.column("userId").to_pylist()
        sessions = decoded.table.column("sessionId").to_pylist()
        expected = [
            f"u{u}" if u is not None else f"s{s}" for u, s in zip(users, sessions, strict=True)
        ]
        assert [r["key"].decode() for r in rows] == expected
        event_ids = decoded.table.column("eventId").to_pylist()
        assert [r["headers"].decode() for r in rows] == [f"eventId={e}" for e in event_ids]
        assert len(set(event_ids)) == len(event_ids), "an event is in the log twice"
        partitions: dict[bytes, set[bytes]] = {}
        for r in rows:
            partitions.setdefault(r["key"], set()).add(r["partition"])
        assert all(len(p) == 1 for p in partitions.values()), "a key spans partitions"
        read += len(rows)
    assert read == report["delivered"] > 4_000


def _malformed(
    rng: np.random.Generator, topic: Topic, rows: list[dict[str, Any]]
) -> list[tuple[bytes, tuple[str, ...]]]:
    """One malformed record of every kind that applies to ``topic``, with its reasons."""
    out = []
    for name, category in CATEGORIES.items():
        if topic not in category.topics:
            continue
        row = rows[int(rng.integers(len(rows)))]
        if name == "too_large":  # > 64 KiB, yet under Kafka's 1 MB message limit
            raw = json.dumps(row | {"city": "x" * 100_000}).encode()
        else:
            raw = category.build(rng, topic, row)
        out.append((raw, category.prefixes))
    return out


def test_records_kcat_produced_are_counted_or_dead_lettered(
    topics: KafkaSettings, kcat: Kcat, tmp_path: Path
) -> None:
    run = SimulatorSettings(
        users=1000, seed=21, start=datetime(2026, 1, 6, 9, tzinfo=UTC),
        end=datetime(2026, 1, 6, 11, tzinfo=UTC),
    )  # fmt: skip
    tables = Simulator(run).run()
    rng = np.random.default_rng(4)
    good = 0
    bad: dict[tuple[str, bytes], tuple[str, ...]] = {}
    bad_count: Counter[tuple[str, bytes]] = Counter()
    for topic, table in tables.items():
        values = encode_table(topic, table).split(b"\n")[:-1]
        rows = table.to_pylist()
        keys = [
            f"u{r['userId']}" if r["userId"] is not None else f"s{r['sessionId']}" for r in rows
        ]
        lines = [k.encode() + b"\t" + v for k, v in zip(keys, values, strict=True)]
        for raw, prefixes in _malformed(rng, topic, rows) if rows else []:
            assert b"\n" not in raw  # kcat splits its input on newlines
            lines.insert(int(rng.integers(len(lines) + 1)), b"bad\t" + raw)
            bad[(topic.value, raw)] = prefixes
            bad_count[(topic.value, raw)] += 1
        good += len(values)
        source = tmp_path / f"{topic.value}.in"
        source.write_bytes(b"".join(line + b"\n" for line in lines))
        done = kcat("-P", "-t", topics.topic(topic.value), "-K", r"\t", "-l", str(source))
        assert done.returncode == 0, done.stderr.decode()[-2000:]
    n_bad = sum(bad_count.values())
    assert n_bad >= 40

    done = subprocess.run(
        [*CLI, "stream", "--bootstrap-servers", topics.bootstrap_servers, "--topic-prefix",
         topics.topic_prefix, "--store", str(tmp_path / "store"), "--until-end"],
        capture_output=True, env=kcat.env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    summary = json.loads(done.stdout.splitlines()[-1])
    assert (summary["events_in"], summary["accepted"], summary["dead"]) == (
        good + n_bad,
        good,
        n_bad,
    )
    assert (summary["duplicates"], summary["late"]) == (0, 0)

    plays = Counter(
        (ts - ts % 60_000, genre)
        for ts, genre in zip(
            tables[Topic.LISTEN]["ts"].to_pylist(), tables[Topic.LISTEN]["genre"].to_pylist(),
            strict=True,
        )
    )  # fmt: skip
    stored_plays = {
        (r["window_start"], r["genre"]): r["plays"]
        for r in metric_rows(tmp_path / "store", "genre_minute")
    }
    dead = ask(tmp_path / "store", DeadLetterRecords(after=0, upto=2**40))
    assert stored_plays == dict(plays)
    assert Counter((r["topic"], r["raw"]) for r in dead) == bad_count
    for r in dead:
        assert r["reason"].startswith(bad[(r["topic"], r["raw"])]), r["reason"]

    names = {topics.topic(t.value) + ".dlq": t.value for t in Topic}
    dlq = read_topics(topics.bootstrap_servers, list(names))
    assert Counter((names[r.topic], r.value) for r in dlq) == bad_count
    for r in dlq:
        assert r.headers["source.topic"] == topics.topic(names[r.topic])
        assert r.headers["reason"].startswith(bad[(names[r.topic], r.value)])
