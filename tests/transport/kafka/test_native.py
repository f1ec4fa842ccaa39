"""The native client (``_c/native.c``: librdkafka driven from C) against a real broker, a dead
address and wrong input, next to the Python client where both must behave the same.

- Every record queued through either client reads back byte for byte (value, key, header),
  empty and non-UTF-8 values included, in order per partition, once.
- Records that cannot be delivered are counted with librdkafka's reason; the client's
  errors and statistics reach the broker watch (what ``test_pause.py`` relies on).
- A full local queue is a ``BufferError`` that ``queue()`` waits out; rows outside their
  buffers and wrong settings are refused with a clear error before anything is queued.

Next: ``backbeat.transport.kafka.clients``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from backbeat.transport.kafka import clients
from backbeat.transport.kafka.clients import NativeClient, PythonClient, column
from backbeat.transport.kafka.health import BrokerWatch
from backbeat.transport.kafka.producer import EventProducer
from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.kafka import with_topics
from tests.support.kafka_log import read_topics

try:
    from backbeat.transport.kafka._produce import NativeProducer  # noqa: F401
except ImportError:  # built without a C compiler
    HAVE_NATIVE = False
else:
    HAVE_NATIVE = True

NEEDS_NATIVE = pytest.mark.skipif(not HAVE_NATIVE, reason="the C client was not built")
CLIENTS = [
    pytest.param("1", id="native", marks=NEEDS_NATIVE),
    pytest.param("0", id="python"),
]
DEAD = "127.0.0.1:1"
"""Nothing listens there: every connection is refused at once."""


def _batch(n: int) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Values (one empty, one not UTF-8), keys and eventIds as the producer hands them over."""
    values = [b'{"i":%d}' % i for i in range(n)]
    values[1], values[2] = b"", b"\xff\x00\xfe"
    keys = [b"u%d" % (i % 5) for i in range(n)]
    ids = pa.array([f"e-{i}" for i in range(n + 2)], pa.string()).slice(2)  # an array offset
    return pa.array(values, pa.large_binary()), pa.array(keys, pa.binary()), ids


@pytest.mark.parametrize("native", CLIENTS)
def test_every_record_reads_back_byte_for_byte_once(
    native: str, kafka: KafkaSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKBEAT_KAFKA_NATIVE", native)
    kafka = with_topics(kafka)
    events = EventProducer(kafka)
    assert isinstance(events._client, NativeClient if native == "1" else PythonClient)
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

    def __init__(self) -> None:
        super().__init__("producer", DEAD)
        self.errors: list[Any] = []
        self.stats: list[str] = []

    def on_error(self, err: Any) -> None:
        self.errors.append(err)
        super().on_error(err)

    def on_stats(self, raw: str) -> None:
        self.stats.append(raw)
        super().on_stats(raw)


@pytest.mark.parametrize("native", CLIENTS)
def test_undeliverable_records_are_counted_with_their_reason_and_errors_reach_the_watch(
    native: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKBEAT_KAFKA_NATIVE", native)
    failures: list[tuple[str, int]] = []
    watch = Watch()
    config = {"bootstrap.servers": DEAD, "message.timeout.ms": "300", "log_level": "0"}
    client = clients.open_client(config, watch, lambda why, n: failures.append((why, n)))
    values, keys, ids = _batch(5)
    at, error = client.produce("t", column(values), column(keys), "eventId", column(ids), 0, 5)
    assert (at, error) == (5, None)
    assert client.flush(10) == 0  # every record timed out: none waits
    deadline = time.monotonic() + 5  # statistics come every second, maybe after the flush
    while not (watch.stats and watch.errors) and time.monotonic() < deadline:
        client.poll(0.1)
    assert sum(n for _, n in failures) == 5
    assert {why for why, _ in failures} == {"Local: Message timed out"}
    assert watch.errors, "the refused connections never reached the watch"
    assert watch.stats, "no statistics reached the watch (statistics.interval.ms = 1 s)"


@pytest.mark.parametrize("native", CLIENTS)
def test_a_full_local_queue_is_waited_out_by_queue(
    native: str, kafka: KafkaSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKBEAT_KAFKA_NATIVE", native)
    kafka = with_topics(kafka)
    small = kafka.model_copy(update={"extra": {"queue.buffering.max.messages": "7"}})
    values, keys, ids = _batch(50)
    client = EventProducer(small)._client
    at, error = client.produce(
        small.topic("auth_events"), column(values), column(keys), "eventId", column(ids), 0, 50
    )
    assert (at, type(error)) == (7, BufferError)
    client.flush(30)

    events = EventProducer(small)
    assert events.queue([(small.topic("page_view_events"), values, keys, ids)]) == 50
    assert events.close().delivered == 50


@NEEDS_NATIVE
def test_rows_outside_their_buffers_are_refused_before_anything_is_queued(
    kafka: KafkaSettings,
) -> None:
    client = NativeClient({"bootstrap.servers": kafka.bootstrap_servers}, Watch(), print)
    values, keys, ids = (column(a) for a in _batch(3))
    ends = pa.py_buffer(np.array([0, 2, 99, 100], np.int64))
    for bad, match in [
        (column(pa.array([b"k0"], pa.binary())), "offsets buffer too short"),
        ((ends, pa.py_buffer(b"abcdef"), True, 0), "row 1 lies outside its data"),
    ]:
        with pytest.raises(ValueError, match=match):
            client.produce("t", values, bad, "eventId", ids, 0, 3)
    with pytest.raises(ValueError, match="start <= stop"):
        client.produce("t", values, keys, "eventId", ids, 2, 1)
    with pytest.raises(TypeError):
        client.produce("t", [b"a"], keys, "eventId", ids, 0, 1)  # type: ignore[arg-type]
    assert client.flush(10) == 0
    assert len(client) == 0


@NEEDS_NATIVE
def test_a_wrong_setting_is_a_kafka_error_naming_it() -> None:
    from confluent_kafka import KafkaException

    with pytest.raises(KafkaException, match=r'No such configuration property: "no\.such"'):
        NativeClient({"bootstrap.servers": DEAD, "no.such": "1"}, Watch(), print)
    with pytest.raises(TypeError, match="must be str"):
        NativeClient({"bootstrap.servers": DEAD, "acks": 1}, Watch(), print)  # type: ignore[dict-item]


def test_the_python_client_is_chosen_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKBEAT_KAFKA_NATIVE", "0")
    client = clients.open_client({"bootstrap.servers": DEAD}, Watch(), print)
    assert isinstance(client, PythonClient)
