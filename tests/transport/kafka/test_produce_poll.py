"""The producer's fast path and the source's poll loop, checked record by record.

``produce_to_kafka`` merges simulated minutes into chunks, encodes them at once and queues
records in a tight loop; ``KafkaSource.poll`` groups records per partition in one pass. These
tests read the log back with a plain consumer, and walk the source poll by poll, to show that
nothing is lost, doubled, reordered or mislabelled on the way.

Next: ``test_roundtrip.py`` (the whole path, kill -9), ``backbeat.transport.kafka``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from backbeat import wiring
from backbeat.events.codec import encode_table
from backbeat.events.schema import Topic
from backbeat.simulate.simulator import Simulator, SimulatorSettings
from backbeat.transport.base import RawSlice
from backbeat.transport.kafka.settings import KafkaSettings
from backbeat.transport.kafka.source import KafkaSource, partition_name

pytestmark = pytest.mark.integration

RUN = SimulatorSettings(
    users=3_000, seed=21, start=datetime(2026, 1, 5, 8, tzinfo=UTC),
    end=datetime(2026, 1, 5, 12, tzinfo=UTC),
)  # fmt: skip
CHOSEN = {Topic.LISTEN, Topic.PAGE_VIEW}
TOTAL = 15_001  # several chunks (of 4,000 here), cut inside a simulated minute


Record = tuple[int, bytes, bytes, bytes]
"""(partition, key, value, eventId header) of one Kafka record."""


def _read_back(kafka: KafkaSettings) -> dict[Topic, list[Record]]:
    """Every record of backbeat's four topics, read to the end with a plain consumer."""
    names = {kafka.topic(t.value): t for t in Topic}
    consumer = Consumer(
        {"bootstrap.servers": kafka.bootstrap_servers, "group.id": "test-reader",
         "enable.partition.eof": True, "log_level": 3}
    )  # fmt: skip
    try:
        meta = consumer.list_topics(timeout=30).topics
        parts = [TopicPartition(n, p, 0) for n in names for p in sorted(meta[n].partitions)]
        consumer.assign(parts)
        out: dict[Topic, list[Record]] = {t: [] for t in Topic}
        ended: set[tuple[str | None, int | None]] = set()
        deadline = time.monotonic() + 120
        while len(ended) < len(parts) and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, 0.5):
                err = msg.error()
                if err is not None and err.code() == KafkaError._PARTITION_EOF:
                    ended.add((msg.topic(), msg.partition()))
                elif err is None:
                    event_id = dict(msg.headers() or [])["eventId"]
                    record = (msg.partition() or 0, msg.key() or b"", msg.value() or b"", event_id)
                    out[names[msg.topic() or ""]].append(record)
        assert len(ended) == len(parts), "did not reach the end of every partition"
        return out
    finally:
        consumer.close()


def test_produce_total_sends_the_earliest_chosen_events_once_keyed_by_user(
    topics: KafkaSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(wiring.produce, "PRODUCE_CHUNK_EVENTS", 4_000)
    report = wiring.produce_to_kafka(RUN, topics, CHOSEN, total=TOTAL, progress=True)
    assert (report.produced, report.delivered, report.failed) == (TOTAL, TOTAL, 0)
    last_frame = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{TOTAL:,} delivered" in last_frame, "the status line's last frame missed the flush"

    tables = Simulator(RUN).run()
    lines = {
        json.loads(line)["eventId"]: line
        for topic in CHOSEN
        for line in encode_table(topic, tables[topic]).split(b"\n")[:-1]
    }
    sent_ts, partition_of = [], {}
    for topic, records in _read_back(topics).items():
        assert topic in CHOSEN or records == [], f"{topic} was not chosen"
        for partition, key, value, event_id in records:
            event = json.loads(value)
            assert event_id.decode() == event["eventId"]
            assert value == lines.pop(event["eventId"]), "a record is not the codec's line"
            user = event.get("userId")
            assert key == (f"u{user}" if user is not None else f"s{event['sessionId']}").encode()
            assert partition_of.setdefault(key, partition) == partition, "a key in 2 partitions"
            sent_ts.append(event["ts"])
    assert len(sent_ts) == TOTAL  # each eventId was popped once: nothing doubled
    unsent_ts = [json.loads(line)["ts"] for line in lines.values()]
    assert max(sent_ts) <= min(unsent_ts), "the cut did not keep the earliest events"


def test_poll_hands_out_each_record_once_in_order_and_resumes_from_positions(
    topics: KafkaSettings,
) -> None:
    wiring.produce_to_kafka(RUN, topics, total=20_000, progress=False)
    busy = [topics.topic(t.value) for t in (Topic.LISTEN, Topic.PAGE_VIEW)]
    names = [topics.topic(t.value) for t in Topic]

    def drain(positions: dict[str, int], polls: int | None) -> dict[str, list[int]]:
        source = KafkaSource(topics, names, stop_at_end=True)
        source.open(positions)
        seen: dict[str, list[int]] = {}
        deadline = time.monotonic() + 60
        try:
            while not source.exhausted and (polls is None or polls > 0):
                assert time.monotonic() < deadline, "the source never reported the end"
                for piece in source.poll(1_500):
                    assert isinstance(piece, RawSlice)
                    offsets = piece.offsets.tolist()
                    assert len(piece.payloads) == len(offsets)
                    assert piece.next_position == offsets[-1] + 1
                    seen.setdefault(piece.partition, []).extend(offsets)
                polls = None if polls is None else polls - 1
            if polls is None:
                assert source.partitions() == {}, "exhausted, yet partitions still deliver"
        finally:
            source.close()
        return seen

    first = drain({}, polls=5)
    assert 0 < sum(map(len, first.values())) < 20_000, "no stop mid-way"
    positions = {p: offsets[-1] + 1 for p, offsets in first.items()}
    rest = drain(positions, polls=None)
    whole = drain({}, polls=None)
    assert sum(map(len, whole.values())) == 20_000
    for name, offsets in whole.items():
        assert offsets == list(range(len(offsets))), f"{name}: gaps, repeats or disorder"
        assert first.get(name, []) + rest.get(name, []) == offsets, f"{name}: bad resume"
    assert {partition_name(n, p) for n in busy for p in range(3)} <= set(whole)
