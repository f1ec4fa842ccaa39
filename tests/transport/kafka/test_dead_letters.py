"""10,000 malformed records of every kind, produced raw into the four topics among valid,
duplicate and late ones: each bad record lands once in the store's ``dead_letters`` AND in
``<topic>.dlq`` (original bytes, reason and source headers), and the valid records around them
are all counted (every metric equals the oracle).

The log is the file tests' generator and injector (``support/eventlog.py``); each topic's file
goes, line by line and in order, into one partition of its topic, so a record's Kafka offset is
its line number and Kafka's per-partition event time is the file's: the oracle's verdicts
(late, duplicate) and the manifest (malformed) translate one to one.

Next: ``backbeat.transport.kafka.dead_letters`` (the producer), ``tests/support/malformed.py``.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from backbeat.events.schema import Topic
from backbeat.transport.kafka.settings import DLQ_SUFFIX, KafkaSettings
from tests.support.eventlog import EventLog, Injected, Trouble, generate, write_log
from tests.support.harness import dead_letter_problems, dead_letters, metric_mismatches
from tests.support.kafka import clean_env, file_lines, produce_log, stream_command
from tests.support.kafka_log import read_topics
from tests.support.malformed import CATEGORIES, STANDARD
from tests.support.oracle import compute

pytestmark = pytest.mark.integration

MALFORMED = 10_000


def test_ten_thousand_malformed_records_go_to_the_store_and_the_dlq_topics(
    topics: KafkaSettings, tmp_path: Path
) -> None:
    small = tuple(c for c in STANDARD if c != "too_large")
    categories = small * 80 + ("too_large",)  # 8 records of 1 MiB, not 625
    trouble = Trouble(malformed=MALFORMED, categories=categories, bogus_lines=0)
    log = write_log(tmp_path / "in", generate(1_500, 60, seed=61), seed=62, trouble=trouble)
    assert set(log.counts("malformed")) == set(CATEGORIES)
    expected = compute(log.directory, log.malformed_offsets())
    names, values = produce_log(topics, log)

    done = subprocess.run(
        stream_command(topics, tmp_path / "store", "--until-end", "--batch-size", "5000"),
        capture_output=True, env=clean_env(), timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    summary = json.loads(done.stdout.splitlines()[-1])
    late = sum(len(v) for v in expected.late.values())
    assert (summary["dead"], summary["late"]) == (MALFORMED, late)
    assert summary["accepted"] == sum(expected.valid.values()) - late - sum(
        expected.duplicates.values()
    )

    # The same checks as the file tests, with (file, byte offset) as (partition, Kafka offset).
    index = {file: file_lines(log.directory / file)[1] for file in names}
    kafka_log = EventLog(
        log.directory,
        [
            Injected(names[e.file], index[e.file][e.offset], e.category, e.kind)
            for e in log.injected
        ],
    )
    kafka_expected = dataclasses.replace(
        expected,
        late={names[f]: {index[f][o] for o in offsets} for f, offsets in expected.late.items()},
    )
    problems = metric_mismatches(tmp_path / "store", expected)
    problems += dead_letter_problems(tmp_path / "store", kafka_log, kafka_expected)
    assert not problems, "\n".join(problems)

    wanted = {(p, o) for p, offsets in kafka_expected.late.items() for o in offsets}
    wanted |= {(e.file, e.offset) for e in kafka_log.of_kind("malformed")}
    reasons = {(r["file"], r["offset"]): r["reason"] for r in dead_letters(tmp_path / "store")}
    sent = {names[f]: v for f, v in values.items()}
    seen = _dlq_topics(topics, sent, reasons)
    missing, extra = sorted(wanted - set(seen)), sorted(set(seen) - wanted)
    doubled = sorted(k for k, n in seen.items() if n > 1)
    assert (len(missing), len(extra), len(doubled)) == (0, 0, 0), (
        f".dlq topics: missing {missing[:3]}, unexpected {extra[:3]}, twice {doubled[:3]}"
    )


def _dlq_topics(
    kafka: KafkaSettings, sent: dict[str, list[bytes]], reasons: dict[tuple[str, int], str]
) -> Counter[tuple[str, int]]:
    """How often each (partition, offset) is in the .dlq topics; checks each record's bytes,
    topic and reason header (the store's reason) on the way."""
    dlq_topics = [kafka.topic(t.value) + DLQ_SUFFIX for t in Topic]
    seen: Counter[tuple[str, int]] = Counter()
    for record in read_topics(kafka.bootstrap_servers, dlq_topics, timeout_s=300):
        headers = record.headers
        source = headers["source.topic"]
        key = (f"kafka:{source}:{int(headers['source.partition'])}", int(headers["source.offset"]))
        assert record.topic == source + DLQ_SUFFIX, key
        assert record.value == sent[key[0]][key[1]], key
        assert headers["reason"] == reasons[key], key
        seen[key] += 1
    return seen
