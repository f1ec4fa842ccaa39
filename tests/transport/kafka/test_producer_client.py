"""The producer's client (confluent-kafka's public ``Producer``, called per record by the
produce loop) against a real broker, a dead address and wrong input.

- Every record :meth:`EventProducer.queue` queues reads back byte for byte (value, key,
  header), empty and non-UTF-8 values included, in order per partition, once.
- Records that cannot be delivered are counted with librdkafka's reason; the client's errors
  and statistics reach the broker watch (what ``test_pause.py`` relies on).
- A full local queue is a ``BufferError`` that ``queue()`` waits out; rows outside their
  buffers and wrong settings are refused with a clear error before anything is queued.

Next: ``backbeat.transport.kafka.producer``, ``test_produce_each.py`` (the loop itself).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from backbeat.transport.kafka import producer
from backbeat.transport.kafka.health import BrokerWatch
from backbeat.transport.kafka.produce_loop import column, produce_each
from backbeat.transport.kafka.producer import EventProducer
from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.kafka import with_topics
from tests.support.kafka_log import read_topics

pytest.importorskip("confluent_kafka", reason="the kafka extra (confluent-kafka) is missing")

DEAD = "127.0.0.1:1"
"""Nothing listens there: every connection is refused at once."""


def _batch(n: int) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Values (one empty, one not UTF-8), keys and eventIds as the producer hands them over."""
    values = [b'{"i":%d}' % i for i in range(n)]
    values[1], values[2] = b"", b"\xff\x00\xfe"
    keys = [b"u%d" % (i % 5) for i in range(n)]
    ids = pa.array([f"e-{i}" for i in range(n + 2)], pa.string()).slice(2)  # an array offset
    return pa.array(values, pa.large_binary()), pa.array(keys, pa.binary()), ids


@pytest.mark.integration
def test_every_record_reads_back_byte_for_byte_once(kafka: KafkaSettings) -> None:
    kafka = with_topics(kafka)
    events = EventProducer(kafka)
    topic = kafka.topic("listen_events")
    values, keys, ids = _batch(3000)
    assert events.queue([(topic, values, keys, ids)]) == 3000
    report = events.close()
    assert (report.delivered, report.failed) == (3000, 0)

    records = read_topics(kafka.bootstrap_servers, [topic])
    got = sorted((r.headers["eventId"], r.value, r.key) for r in records)
    want = sorted(zip(ids.to_pylist(), values.to_pylist(), keys.to_pylist(), strict=True))
    assert got == want
    for part in {r.partition for r in records}:  # each key in one partition, in queue order
        order = [int(r.headers["eventId"][2:]) for r in records if r.partition == part]
        assert order == sorted(order)


class Watch(BrokerWatch):
    """A broker watch that also keeps what it was told."""

    def __init__(self, client: str, servers: str) -> None:
        super().__init__(client, servers)
        self.errors: list[Any] = []
        self.stats: list[str] = []

    def on_error(self, err: Any) -> None:
        self.errors.append(err)
        super().on_error(err)

    def on_stats(self, raw: str) -> None:
        self.stats.append(raw)
        super().on_stats(raw)


def test_undeliverable_records_are_counted_with_their_reason_and_errors_reach_the_watch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(producer, "BrokerWatch", Watch)
    extra = {"message.timeout.ms": "300", "log_level": "0"}
    events = EventProducer(KafkaSettings(bootstrap_servers=DEAD, extra=extra))
    watch = events.watch
    assert isinstance(watch, Watch)
    assert events.queue([("t", *_batch(5))]) == 5
    report = events.close(10)  # every record timed out: none waits
    assert (report.produced, report.delivered, report.failed) == (5, 0, 5)
    assert report.reasons == {"Local: Message timed out": 5}
    deadline = time.monotonic() + 5  # statistics come every second, maybe after the flush
    while not (watch.stats and watch.errors) and time.monotonic() < deadline:
        events._producer.poll(0.1)
    assert watch.errors, "the refused connections never reached the watch"
    assert watch.stats, "no statistics reached the watch (statistics.interval.ms = 1 s)"


@pytest.mark.integration
def test_a_full_local_queue_is_waited_out_by_queue(kafka: KafkaSettings) -> None:
    kafka = with_topics(kafka)
    small = kafka.model_copy(update={"extra": {"queue.buffering.max.messages": "7"}})
    values, keys, ids = _batch(50)
    full = EventProducer(small)._producer
    at, error = produce_each(
        full.produce, small.topic("auth_events"), column(values), column(keys), "eventId",
        column(ids), 0, 50,
    )  # fmt: skip
    assert (at, type(error)) == (7, BufferError)
    full.flush(30)

    events = EventProducer(small)
    assert events.queue([(small.topic("page_view_events"), values, keys, ids)]) == 50
    assert events.close().delivered == 50


def test_rows_outside_their_buffers_are_refused_before_anything_is_queued() -> None:
    events = EventProducer(KafkaSettings(bootstrap_servers=DEAD))
    values, keys, ids = _batch(3)
    ends = pa.py_buffer(np.array([0, 4, 2, 6], np.int32))  # row 1 ends before it starts
    outside = pa.Array.from_buffers(pa.binary(), 3, [None, ends, pa.py_buffer(b"abcdef")])
    with pytest.raises(ValueError, match="row 1 lies outside its data"):
        events.queue([("t", values, outside, ids)])
    short = column(pa.array([b"k0"], pa.binary()))
    real = events._producer.produce
    with pytest.raises(ValueError, match="offsets buffer too short"):
        produce_each(real, "t", column(values), short, "eventId", column(ids), 0, 3)
    with pytest.raises(ValueError, match="start <= stop"):
        produce_each(real, "t", column(values), column(keys), "eventId", column(ids), 2, 1)
    # A record queued for a dead address would still wait (5 min) and fail the flush.
    report = events.close(1)
    assert (report.produced, report.failed) == (0, 0)


def test_a_wrong_setting_is_a_kafka_error_naming_it() -> None:
    from confluent_kafka import KafkaException

    wrong = KafkaSettings(bootstrap_servers=DEAD, extra={"no.such": "1"})
    with pytest.raises(KafkaException, match=r'No such configuration property: "no\.such"'):
        EventProducer(wrong)
