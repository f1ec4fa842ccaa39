"""The producer's per-record call loop: the C core (``_c/produce.c``) against its Python twin.

Both loops take values, keys and headers as Arrow buffers (int64 or int32 offsets, sliced or
not), must make the same calls, in the same order, stop at the same record with the same
exception and refuse rows outside their buffers before any call; ``EventProducer.queue``
must then count exactly what was queued, wait out a full local queue and re-raise anything
else. A fake ``produce`` records calls and fails on
cue; one test drives the real ``confluent_kafka.Producer`` (no broker needed: a two-record
queue fills at once) to pin the positional call the C loop makes. The integration tests
(``test_produce_poll.py``, ``test_kcat.py``) read every key, value and header back.

Next: ``backbeat.transport.kafka.produce_loop``, ``test_producer_client.py`` (the real client).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backbeat.transport.kafka import produce_loop, producer
from backbeat.transport.kafka.produce_loop import Column, _produce_each, column
from backbeat.transport.kafka.producer import EventProducer
from backbeat.transport.kafka.settings import KafkaSettings

try:
    from backbeat.transport.kafka._produce import produce_each as native_each
except ImportError:  # built without a C compiler
    native_each = None

NEEDS_C = pytest.mark.skipif(native_each is None, reason="the C loop was not built")
LOOPS = [
    pytest.param(_produce_each, id="python"),
    pytest.param(native_each, id="c", marks=NEEDS_C),
]
Loop = Callable[..., tuple[int, BaseException | None]]


class FakeProduce:
    """Records each call as (topic, value, key, headers); raises ``fail[i]`` when i calls
    have returned, and BufferError while ``room`` records wait for :meth:`poll`."""

    def __init__(self, fail: dict[int, BaseException] | None = None, room: int = 10**9) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail = dict(fail or {})
        self.room, self.waiting = room, 0

    def __call__(self, topic: str, value: Any, key: Any, *rest: Any, **kw: Any) -> None:
        attempt = len(self.calls)  # every earlier call returned
        if attempt in self.fail:
            raise self.fail.pop(attempt)
        if self.waiting >= self.room:
            raise BufferError("Local: Queue full")
        self.waiting += 1
        headers = kw.get("headers", rest[-1] if rest else None)
        self.calls.append((topic, bytes(value), bytes(key), [(h, bytes(v)) for h, v in headers]))

    def poll(self, timeout: float = 0) -> int:
        """The waiting records are delivered."""
        self.waiting = 0
        return 0

    def __len__(self) -> int:
        return 0


def _records(n: int) -> tuple[list[bytes], list[bytes], list[bytes]]:
    values = [b'{"i":%d}' % i for i in range(n)]
    return values, [b"u%d" % (i % 7) for i in range(n)], [b"e-%d" % i for i in range(n)]


def _arrays(n: int, cut: int = 0) -> tuple[pa.Array, pa.Array, pa.Array]:
    """:func:`_records` as the producer hands them over: values large_binary (int64 offsets),
    keys binary (int32), eventIds a string array sliced ``cut`` rows in (an array offset)."""
    values, keys, ids = _records(n)
    sliced = pa.array([b"x"] * cut + ids, pa.string()).slice(cut)
    return pa.array(values, pa.large_binary()), pa.array(keys, pa.binary()), sliced


def _columns(n: int, cut: int = 0) -> tuple[Column, Column, Column]:
    values, keys, ids = _arrays(n, cut)
    return column(values), column(keys), column(ids)


@pytest.mark.parametrize("loop", LOOPS)
def test_every_record_is_one_call_in_order(loop: Loop) -> None:
    values, keys, ids = _records(50)
    specs = _columns(50, cut=3)
    fake = FakeProduce()
    assert loop(fake, "t", specs[0], specs[1], "eventId", specs[2], 10, 40) == (40, None)
    assert fake.calls == [("t", values[i], keys[i], [("eventId", ids[i])]) for i in range(10, 40)]


@NEEDS_C
@given(
    n=st.integers(0, 40),
    cut=st.integers(0, 3),
    start=st.integers(0, 40),
    fail_at=st.integers(0, 45),
    error=st.sampled_from([BufferError("full"), ValueError("bad"), KeyboardInterrupt()]),
)
def test_the_c_loop_stops_where_the_python_loop_stops(
    n: int, cut: int, start: int, fail_at: int, error: BaseException
) -> None:
    specs = _columns(n, cut)
    start = min(start, n)
    outcomes = []
    for loop in (_produce_each, native_each):
        fake = FakeProduce({fail_at: error})
        at, raised = loop(fake, "t", specs[0], specs[1], "h", specs[2], start, n)
        outcomes.append((at, raised, fake.calls))
    assert outcomes[0] == outcomes[1]
    at, raised, calls = outcomes[0]
    stops = fail_at < n - start
    assert (at, raised) == ((start + fail_at, error) if stops else (n, None))
    assert len(calls) == at - start


def _corrupt(ends: list[int], data: bytes) -> Column:
    return pa.py_buffer(np.array(ends, np.int64)), pa.py_buffer(data), True, 0


@pytest.mark.parametrize("loop", LOOPS)
def test_rows_outside_their_buffers_are_refused_before_any_call(loop: Loop) -> None:
    values, keys, ids = _columns(3)
    short = column(pa.array([b"k0", b"k1"], pa.binary()))
    for bad, match in [
        (short, "offsets buffer too short"),
        (_corrupt([0, 2, 9, 10], b"abcdef"), "row 1 lies outside its data"),
        (_corrupt([0, 4, 2, 6], b"abcdef"), "row 1 lies outside its data"),
    ]:
        fake = FakeProduce()
        with pytest.raises(ValueError, match=match):
            loop(fake, "t", values, bad, "h", ids, 0, 3)
        assert fake.calls == []
    with pytest.raises(ValueError, match="start <= stop"):
        loop(FakeProduce(), "t", values, keys, "h", ids, 2, 1)


@NEEDS_C
def test_the_c_loop_refuses_what_is_not_a_column() -> None:
    _, keys, ids = _columns(3)
    with pytest.raises(TypeError):
        native_each(FakeProduce(), "t", [b"a", b"b", b"c"], keys, "h", ids, 0, 3)


@pytest.mark.parametrize("loop", LOOPS)
def test_the_real_producer_takes_the_call_and_reports_a_full_queue(loop: Loop) -> None:
    pytest.importorskip("confluent_kafka", reason="the kafka extra (confluent-kafka) is missing")
    from confluent_kafka import Producer

    real = Producer(
        {"bootstrap.servers": "127.0.0.1:1", "queue.buffering.max.messages": 2, "log_level": 0}
    )
    values, keys, ids = _columns(5)
    at, error = loop(real.produce, "t", values, keys, "eventId", ids, 0, 5)
    assert (at, type(error)) == (2, BufferError)
    real.purge()


def _event_producer(
    monkeypatch: pytest.MonkeyPatch, loop: Loop, fake: FakeProduce
) -> EventProducer:
    """An EventProducer that queues into ``fake`` through ``loop``, in slices of 7."""
    monkeypatch.setattr(produce_loop, "produce_each", loop)
    monkeypatch.setattr(producer, "SLICE", 7)
    events = EventProducer(KafkaSettings(bootstrap_servers="127.0.0.1:1"))
    fake.produce = fake  # type: ignore[attr-defined]  # the Producer's calls queue() makes
    events._producer = fake  # type: ignore[assignment]
    return events


@pytest.mark.parametrize("loop", LOOPS)
def test_queue_waits_out_a_full_local_queue_and_counts_each_record_once(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeProduce(room=5)
    events = _event_producer(monkeypatch, loop, fake)
    values, keys, ids = _records(23)
    arrays = _arrays(23)
    batches = [("a", *(a.slice(0, 20) for a in arrays)), ("b", *(a.slice(20) for a in arrays))]
    assert events.queue(batches) == 23
    assert events.report.produced == 23
    expected = [("a", values[i], keys[i], [("eventId", ids[i])]) for i in range(20)]
    expected += [("b", values[i], keys[i], [("eventId", ids[i])]) for i in range(20, 23)]
    assert fake.calls == expected


@pytest.mark.parametrize("loop", LOOPS)
def test_queue_counts_what_was_queued_before_an_error_and_raises_it(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeProduce({6: ValueError("no value")})
    events = _event_producer(monkeypatch, loop, fake)
    with pytest.raises(ValueError, match="no value"):
        events.queue([("a", *_arrays(10))])
    assert events.report.produced == len(fake.calls) == 6


def test_queue_refuses_batches_of_unequal_lengths(monkeypatch: pytest.MonkeyPatch) -> None:
    events = _event_producer(monkeypatch, _produce_each, FakeProduce())
    values, keys, ids = _arrays(3)
    with pytest.raises(ValueError, match="differ in length"):
        events.queue([("a", values, keys.slice(0, 2), ids)])
