"""The consumer's read-ahead thread (``read_ahead.py``) changes nothing the engine sees.

Without a group, ``KafkaSource`` runs ``consume()`` on a background thread, and decodes each
result on a second one, while the engine works. Records must still come out per partition in
offset order, each exactly once, with the positions the engine commits; what was decoded
ahead must be exactly what the engine would decode (good rows and dead letters); a seek (a
fenced commit rewinds) drops whatever was read ahead of it; and closing the source stops the
threads promptly.

Next: ``backbeat.transport.kafka.read_ahead``, ``test_roundtrip.py``.
"""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Producer

from backbeat.events.codec import decode_batch
from backbeat.events.schema import Topic
from backbeat.transport.base import RawSlice
from backbeat.transport.kafka.producer import records
from backbeat.transport.kafka.settings import KafkaSettings
from backbeat.transport.kafka.source import KafkaSource, partition_name
from tests.support.eventlog import generate

pytestmark = pytest.mark.integration

PER_PARTITION = 400


def _produce(kafka: KafkaSettings) -> str:
    topic = kafka.topic(Topic.LISTEN.value)
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, "log_level": 3})
    for i in range(PER_PARTITION):
        for partition in range(3):
            producer.produce(topic, value=f"{partition}:{i}".encode(), partition=partition)
    assert producer.flush(30) == 0
    return topic


def _drain(source: KafkaSource, batch: int) -> dict[str, list[tuple[int, bytes]]]:
    """Poll until exhausted: per partition, (offset, value) in the order handed out."""
    got: dict[str, list[tuple[int, bytes]]] = {}
    deadline = time.monotonic() + 60
    while not source.exhausted:
        assert time.monotonic() < deadline, "the source never reached the end"
        for piece in source.poll(batch):
            assert isinstance(piece, RawSlice)
            assert piece.next_position == int(piece.offsets[-1]) + 1
            got.setdefault(piece.partition, []).extend(
                zip(piece.offsets.tolist(), piece.payloads, strict=True)
            )
    return got


def _readers() -> list[threading.Thread]:
    names = ("backbeat-kafka-read", "backbeat-kafka-prepare")
    return [t for t in threading.enumerate() if t.name in names]


def test_read_ahead_keeps_order_and_positions_and_stops(topics: KafkaSettings) -> None:
    topic = _produce(topics)
    results = {}
    for read_ahead in (True, False):
        source = KafkaSource(topics, [topic], stop_at_end=True, read_ahead=read_ahead)
        source.open({})
        results[read_ahead] = _drain(source, 70)  # small polls: most results are split
        started = time.monotonic()
        source.close()
        assert time.monotonic() - started < 5
        assert _readers() == []
    assert results[True] == results[False]
    assert sorted(results[True]) == [partition_name(topic, p) for p in range(3)]
    for p in range(3):
        records = results[True][partition_name(topic, p)]
        assert records == [(i, f"{p}:{i}".encode()) for i in range(PER_PARTITION)]


def test_a_seek_drops_what_was_read_ahead(topics: KafkaSettings) -> None:
    topic = _produce(topics)
    source = KafkaSource(topics, [topic], stop_at_end=True, read_ahead=True)
    name = [partition_name(topic, p) for p in range(3)]
    source.open({name[1]: 100})
    first = {piece.partition: piece.offsets.tolist() for piece in source.poll(50)}
    assert first, "nothing read"
    time.sleep(0.5)  # the thread reads ahead meanwhile
    source.seek({name[0]: 10, name[1]: 300, name[2]: None})
    got = _drain(source, 90)
    source.close()
    assert _readers() == []
    assert [o for o, _ in got[name[0]]] == list(range(10, PER_PARTITION))
    assert [o for o, _ in got[name[1]]] == list(range(300, PER_PARTITION))
    assert [o for o, _ in got[name[2]]] == list(range(PER_PARTITION))


def test_what_is_decoded_ahead_is_what_the_engine_would_decode(topics: KafkaSettings) -> None:
    topic = topics.topic(Topic.LISTEN.value)
    encoded, _, _ = records(Topic.LISTEN, generate(sessions=40, minutes=20, seed=5)[Topic.LISTEN])
    values = encoded.to_pylist()
    bad = [b"not json", b'{"ts":"soon"}', b"", b"[1]"]
    payloads = values[:300] + bad + values[300:600]
    producer = Producer({"bootstrap.servers": topics.bootstrap_servers, "log_level": 3})
    for i, value in enumerate(payloads):
        producer.produce(topic, value=value, partition=i % 3)
    assert producer.flush(30) == 0
    source = KafkaSource(topics, [topic], stop_at_end=True, read_ahead=True)
    source.open({})
    ahead = checked = 0
    deadline = time.monotonic() + 60
    while not source.exhausted:
        assert time.monotonic() < deadline, "the source never reached the end"
        for piece in source.poll(100_000):
            assert isinstance(piece, RawSlice)
            own = decode_batch(Topic.LISTEN, piece.payloads, piece.offsets)
            if piece.decoded is not None:
                ahead += len(piece.offsets)
                assert piece.decoded.table.equals(own.table)
                assert piece.decoded.offsets.tolist() == own.offsets.tolist()
                assert piece.decoded.dead == own.dead
            checked += len(piece.offsets)
    source.close()
    assert checked == len(payloads)
    assert ahead == len(payloads)  # large polls: every result was taken whole
