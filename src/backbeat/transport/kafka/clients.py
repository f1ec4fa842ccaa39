"""The two clients :class:`~backbeat.transport.kafka.producer.EventProducer` can queue through.

Both take records as binary columns (:data:`Column`) and
report the same way: ``produce`` returns (records done, the exception that stopped it or
None; ``BufferError`` when the local queue is full), delivery failures go to ``on_failure``
(reason, count) and the client's errors and statistics to a :class:`BrokerWatch`.

- :class:`NativeClient`: ``_c/native.c``, a librdkafka producer driven from C on the
  librdkafka confluent-kafka loaded (about 1 us a record of the calling thread instead of 2.5).
- :class:`PythonClient`: confluent-kafka's ``Producer``, one ``produce`` call per record
  (from the C loop ``_c/produce.c``, or its Python twin); the fallback where the native
  client cannot load, and what ``BACKBEAT_KAFKA_NATIVE=0`` chooses.

Both use the same librdkafka settings, so records, partitions and guarantees are the same.

Next: ``producer.py`` (the caller).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from itertools import pairwise
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from backbeat.transport.kafka.health import BrokerWatch

Column = tuple[pa.Buffer, pa.Buffer, bool, int]
"""A binary column as the produce loop takes it: offsets, data, int64 offsets?, first row."""
QUEUE_FULL = -184
"""librdkafka's RD_KAFKA_RESP_ERR__QUEUE_FULL."""
OnFailure = Callable[[str, int], None]
"""Told (reason, count) of records that could not be delivered."""
Produced = tuple[int, BaseException | None]


def column(array: pa.Array) -> Column:
    """The buffers of an Arrow binary or string array, as ``produce_each`` takes them."""
    _, offsets, data = array.buffers()
    wide = array.type in (pa.large_binary(), pa.large_string())
    return offsets, data if data is not None else pa.py_buffer(b""), wide, array.offset


def _rows(spec: Column, start: int, stop: int) -> list[bytes]:
    """Rows [start, stop) of a column as bytes; ValueError if they lie outside its buffers."""
    offsets, data, wide, first = spec
    ends = np.frombuffer(offsets, np.int64 if wide else np.int32)
    if first < 0 or len(ends) < first + stop + 1:
        raise ValueError("produce_each: offsets buffer too short")
    ends = ends[first + start : first + stop + 1].tolist()
    rows = list(pairwise(ends))
    for i, (lo, hi) in enumerate(rows, start):
        if lo < 0 or hi < lo or hi > data.size:
            raise ValueError(f"produce_each: row {i} lies outside its data")
    view = memoryview(data)
    return [bytes(view[lo:hi]) for lo, hi in rows]


def _produce_each(
    produce: Callable[..., None],
    topic: str,
    values: Column,
    keys: Column,
    header: str,
    header_values: Column,
    start: int,
    stop: int,
) -> tuple[int, BaseException | None]:
    """``produce(topic, values[i], keys[i], headers=[(header, header_values[i])])`` for i in
    [start, stop), each value as bytes; stops at the first exception: (i, exception), else
    (stop, None). Rows outside their buffers raise ValueError before any call. The C core
    (``_c/produce.c``) runs this loop without the interpreter's work per record; this is
    the same loop for a build without a C compiler."""
    if start < 0 or stop < start:
        raise ValueError("produce_each: need 0 <= start <= stop")
    rows = zip(*(_rows(c, start, stop) for c in (values, keys, header_values)), strict=True)
    for i, (value, key, header_value) in enumerate(rows, start):
        try:
            produce(topic, value, key, headers=[(header, header_value)])
        except BaseException as error:  # handed back: the caller counts, then re-raises
            return i, error
    return stop, None


try:
    from backbeat.transport.kafka._produce import produce_each
except ImportError:  # built without a C compiler
    produce_each = _produce_each


class Client(Protocol):
    def produce(
        self,
        topic: str,
        values: Column,
        keys: Column,
        header: str,
        header_values: Column,
        start: int,
        stop: int,
    ) -> Produced: ...

    def poll(self, timeout: float) -> None: ...

    def flush(self, timeout: float) -> int: ...

    def __len__(self) -> int: ...


class NativeClient:
    """``_c/native.c``'s NativeProducer, its callbacks' findings handed to Python."""

    def __init__(self, config: dict[str, str], watch: BrokerWatch, on_failure: OnFailure) -> None:
        """Raises:
        ImportError: the C client is not built or librdkafka cannot be reached from C.
        KafkaException: librdkafka refused a setting.
        """
        from backbeat.transport.kafka._produce import NativeProducer

        try:
            self._native = NativeProducer(config)
        except ValueError as error:
            raise KafkaException(KafkaError(KafkaError._INVALID_ARG, str(error))) from None
        self._watch = watch
        self._on_failure = on_failure

    def produce(
        self,
        topic: str,
        values: Column,
        keys: Column,
        header: str,
        header_values: Column,
        start: int,
        stop: int,
    ) -> Produced:
        at, code = self._native.produce(topic, values, keys, header, header_values, start, stop)
        if code == QUEUE_FULL:
            return at, BufferError("Local: Queue full")
        return at, KafkaException(KafkaError(code)) if code else None

    def poll(self, timeout: float) -> None:
        self._native.poll(timeout)
        self._hand_over()

    def flush(self, timeout: float) -> int:
        try:
            left: int = self._native.flush(timeout)
        finally:
            self._hand_over()
        return left

    def __len__(self) -> int:
        return len(self._native)

    def _hand_over(self) -> None:
        failures, errors, stats, dropped = self._native.take()
        for _, reason, count in failures:
            self._on_failure(reason, count)
        for code, reason, fatal in errors:
            self._watch.on_error(KafkaError(code, reason, fatal=fatal))
        if dropped:
            self._watch.on_error(KafkaError(KafkaError._FAIL, f"{dropped} more client errors"))
        if stats is not None:
            self._watch.on_stats(stats)


class PythonClient:
    """confluent-kafka's ``Producer``, one call per record."""

    def __init__(self, config: dict[str, Any], watch: BrokerWatch, on_failure: OnFailure) -> None:
        self._each = produce_each
        self._on_failure = on_failure
        # Only failures come back as callbacks (no Python call per delivered record).
        self.producer = Producer(
            {
                **watch.config(),
                **config,
                "on_delivery": self._on_delivery,
                "delivery.report.only.error": True,
            }
        )

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._on_failure(err.str(), 1)

    def produce(
        self,
        topic: str,
        values: Column,
        keys: Column,
        header: str,
        header_values: Column,
        start: int,
        stop: int,
    ) -> Produced:
        produce = self.producer.produce
        return self._each(produce, topic, values, keys, header, header_values, start, stop)

    def poll(self, timeout: float) -> None:
        self.producer.poll(timeout)

    def flush(self, timeout: float) -> int:
        return self.producer.flush(timeout)

    def __len__(self) -> int:
        return len(self.producer)


def open_client(config: dict[str, str], watch: BrokerWatch, on_failure: OnFailure) -> Client:
    """The native client where it loads (unless ``BACKBEAT_KAFKA_NATIVE=0``), else the Python
    one; both with ``config`` and the watch's statistics interval."""
    if os.environ.get("BACKBEAT_KAFKA_NATIVE", "1") != "0":
        settings = {k: v for k, v in watch.config().items() if isinstance(v, str)}
        try:
            return NativeClient({**settings, **config}, watch, on_failure)
        except ImportError:
            pass
    return PythonClient(config, watch, on_failure)
