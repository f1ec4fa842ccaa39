"""Backbeat's sources as Spark streaming sources (PySpark's Python Data Source API).

Both read what the embedded engine reads, named as it names it, so a store's positions mean
the same to either engine: a JSONL file is a partition named by its absolute path and its
position is a byte offset; a Kafka partition is ``kafka:<topic>:<n>`` and its position the
next offset. A stream offset is a dict ``{partition: position}``; every input partition Spark
plans is one source partition between two positions, so a task reads one partition in its
order (the event-time verdicts depend on it). Rows are ``(topic, partition, offset, value)``
as Arrow record batches; decoding and validation happen after, on the executors
(``prepare.py``).

- ``backbeat-jsonl``: options ``files`` (a JSON list of paths), ``start`` (JSON positions),
  ``maxRows``, ``follow``. Only complete lines are planned, so a file still being written is
  safe; without ``follow`` a last line without a newline counts, as the embedded source reads.
- ``backbeat-kafka``: options ``config`` (librdkafka settings as JSON), ``topics`` (a JSON map
  of cluster topic -> backbeat topic), ``start`` (JSON positions), ``from`` (``earliest`` or
  ``latest``, for partitions without a position), ``maxRows``. The read limit is shared among
  partitions; a partition's records between two offsets are read by assignment, no group.

Both support ``Trigger.AvailableNow`` (``--trigger available-now``): the query reads what was
there when it started (the files' last complete lines, the partitions' high watermarks), in
batches of ``maxRows`` as any other trigger, and stops.

Spark's checkpoint records each batch's offsets, so a restarted query replays a batch whose
commit did not finish. The store's positions are the truth when the checkpoint is lost: the
engine passes them as ``start``.

Next: ``prepare.py`` (what the executors do with the rows), ``engine.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)

RAW: Final = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.string()),
        ("offset", pa.int64()),
        ("next", pa.int64()),
        ("value", pa.binary()),
    ]
)
RAW_DDL: Final = "topic STRING, partition STRING, offset BIGINT, next BIGINT, value BINARY"
"""One record: where it is, the position after it, and its bytes as they came."""
_SCAN: Final = 8 << 20
_ROWS_PER_BATCH: Final = 50_000


@dataclass(frozen=True)
class Range(InputPartition):
    """One source partition between two positions."""

    topic: str
    name: str
    start: int
    end: int


def _positions(options: Mapping[str, str], key: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in json.loads(options.get(key) or "{}").items()}


def _max_rows(limit: ReadLimit, default: int | None) -> int | None:
    if isinstance(limit, ReadAllAvailable):
        return None
    if isinstance(limit, ReadMaxRows):
        return int(limit.max_rows)
    return default


def _raw_batch(
    topic: str, name: str, offsets: list[int], nexts: list[int], values: list[bytes]
) -> pa.RecordBatch:
    n = len(offsets)
    return pa.record_batch(
        [
            pa.repeat(topic, n),
            pa.repeat(name, n),
            pa.array(offsets, pa.int64()),
            pa.array(nexts, pa.int64()),
            pa.array(values, pa.binary()),
        ],
        schema=RAW,
    )


# ---------------------------------------------------------------------------- JSONL


def _complete_end(path: str, start: int, max_lines: int | None, follow: bool) -> int:
    """The byte offset after the last complete line from ``start`` (at most ``max_lines``);
    without ``follow``, a last line without a newline is complete at the end of the file."""
    size = os.path.getsize(path)
    if start >= size:
        return start
    end, lines = start, 0
    with open(path, "rb") as fh:
        fh.seek(start)
        position = start
        while True:
            data = fh.read(_SCAN)
            if not data:
                break
            cut = 0
            while (newline := data.find(b"\n", cut)) >= 0:
                lines += 1
                cut = newline + 1
                end = position + cut
                if max_lines is not None and lines >= max_lines:
                    return end
            position += len(data)
    if not follow and end < size and (max_lines is None or lines < max_lines):
        return size
    return end


def _last_complete(path: str, follow: bool) -> int:
    """The byte offset after the file's last complete line (``follow``: a last line without a
    newline is still being written; otherwise the end of the file)."""
    size = os.path.getsize(path)
    if not follow:
        return size
    with open(path, "rb") as fh:
        position = size
        while position > 0:
            step = min(_SCAN, position)
            position -= step
            fh.seek(position)
            newline = fh.read(step).rfind(b"\n")
            if newline >= 0:
                return position + newline + 1
    return 0


class JsonlStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Complete lines of each file, in batches of at most ``maxRows`` lines in all; under
    ``Trigger.AvailableNow``, up to what the files held when the query started, still in
    batches (without the mixin Spark would read it all as one batch)."""

    def __init__(self, options: Mapping[str, str]) -> None:
        self.files = [os.path.abspath(p) for p in json.loads(options["files"])]
        self.follow = options.get("follow", "false") == "true"
        self.start = _positions(options, "start")
        self.max_rows = int(options["maxRows"]) if options.get("maxRows") else None
        self.target: dict[str, int] | None = None

    def prepareForTriggerAvailableNow(self) -> None:
        self.target = {f: _last_complete(f, self.follow) for f in self.files}

    def initialOffset(self) -> dict[str, int]:
        return {f: self.start.get(f, 0) for f in self.files}

    def getDefaultReadLimit(self) -> ReadLimit:
        return ReadMaxRows(self.max_rows) if self.max_rows else ReadAllAvailable()

    def latestOffset(self, start: dict[str, int], limit: ReadLimit) -> dict[str, int]:
        budget = _max_rows(limit, self.max_rows)
        share = None if budget is None else max(1, budget // max(1, len(self.files)))
        ends = {f: _complete_end(f, int(start.get(f, 0)), share, self.follow) for f in self.files}
        return _capped(ends, start, self.target)

    def partitions(self, start: dict[str, int], end: dict[str, int]) -> list[Range]:
        return [
            Range(os.path.basename(f).removesuffix(".jsonl"), f, int(start.get(f, 0)), int(end[f]))
            for f in self.files
            if int(end[f]) > int(start.get(f, 0))
        ]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        assert isinstance(partition, Range)
        with open(partition.name, "rb") as fh:
            fh.seek(partition.start)
            data = fh.read(partition.end - partition.start)
        if not data.endswith(b"\n"):
            data += b"\n"  # the last line of a finished file
        lines = data.split(b"\n")[:-1]
        position = partition.start
        offsets: list[int] = []
        for line in lines:
            offsets.append(position)
            position += len(line) + 1
        nexts = [*offsets[1:], position]
        values = [ln.rstrip(b"\r") for ln in lines]
        for i in range(0, len(values), _ROWS_PER_BATCH):
            j = i + _ROWS_PER_BATCH
            yield _raw_batch(partition.topic, partition.name, offsets[i:j], nexts[i:j], values[i:j])


class JsonlDataSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return "backbeat-jsonl"

    def schema(self) -> str:
        return RAW_DDL

    def streamReader(self, schema: Any) -> JsonlStreamReader:
        return JsonlStreamReader(self.options)


# ---------------------------------------------------------------------------- Kafka


def _kafka_name(topic: str, number: int) -> str:
    return f"kafka:{topic}:{number}"


def _kafka_key(name: str) -> tuple[str, int]:
    _, rest = name.split(":", 1)
    topic, _, number = rest.rpartition(":")
    return topic, int(number)


def _kafka_batch(topic: str, name: str, offsets: list[int], values: list[bytes]) -> pa.RecordBatch:
    return _raw_batch(topic, name, offsets, [o + 1 for o in offsets], values)


def kafka_bounds(consumer: Any, topics: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Low and high watermark of every partition of ``topics`` (cluster names) that exists."""
    from confluent_kafka import TopicPartition

    found: dict[str, tuple[int, int]] = {}
    metadata = consumer.list_topics(timeout=15)
    for topic in topics:
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            continue  # not created yet: its partitions join when it is
        for number in info.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, number), timeout=15, cached=False
            )
            found[_kafka_name(topic, number)] = (low, high)
    return found


def kafka_client(config: Mapping[str, str], role: str = "planner") -> Any:
    """A consumer that joins no group and commits nothing (metadata, or assigned reads)."""
    from confluent_kafka import Consumer

    return Consumer({**config, "group.id": f"backbeat-spark-{role}", "enable.auto.commit": False})


def _capped(
    ends: dict[str, int], start: Mapping[str, int], target: Mapping[str, int] | None
) -> dict[str, int]:
    """``ends`` no further than an available-now target (never before ``start``)."""
    if target is None:
        return ends
    return {
        name: max(int(start.get(name, 0)), min(end, target.get(name, end)))
        for name, end in ends.items()
    }


class KafkaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Kafka partitions from their positions, at most ``maxRows`` records a batch in all;
    under ``Trigger.AvailableNow``, up to the high watermarks when the query started."""

    def __init__(self, options: Mapping[str, str]) -> None:
        self.config: dict[str, str] = json.loads(options["config"])
        self.topics: dict[str, str] = json.loads(options["topics"])
        self.start = _positions(options, "start")
        self.start_from = options.get("from", "earliest")
        self.max_rows = int(options["maxRows"]) if options.get("maxRows") else None
        self._consumer: Any = None
        self.target: dict[str, int] | None = None

    def prepareForTriggerAvailableNow(self) -> None:
        self.target = {name: high for name, (_low, high) in self._bounds().items()}

    def _client(self) -> Any:
        if self._consumer is None:
            self._consumer = kafka_client(self.config)
        return self._consumer

    def _bounds(self) -> dict[str, tuple[int, int]]:
        return kafka_bounds(self._client(), self.topics)

    def initialOffset(self) -> dict[str, int]:
        bounds = self._bounds()
        return {
            name: self.start.get(name, low if self.start_from == "earliest" else high)
            for name, (low, high) in bounds.items()
        }

    def getDefaultReadLimit(self) -> ReadLimit:
        return ReadMaxRows(self.max_rows) if self.max_rows else ReadAllAvailable()

    def latestOffset(self, start: dict[str, int], limit: ReadLimit) -> dict[str, int]:
        budget = _max_rows(limit, self.max_rows)
        bounds = self._bounds()
        begin = {
            name: int(start.get(name, self.start.get(name, low)))
            for name, (low, _high) in bounds.items()
        }
        end = {name: max(begin[name], high) for name, (_low, high) in bounds.items()}
        if budget is not None:
            share = max(1, budget // max(1, len(end)))
            end = {name: min(e, begin[name] + share) for name, e in end.items()}
        return _capped(end, begin, self.target)

    def partitions(self, start: dict[str, int], end: dict[str, int]) -> list[Range]:
        ranges = []
        for name, stop in end.items():
            topic, _ = _kafka_key(name)
            begin = int(start.get(name, self.start.get(name, 0)))
            if int(stop) > begin:
                ranges.append(Range(topic, name, begin, int(stop)))
        return ranges

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        assert isinstance(partition, Range)
        from confluent_kafka import TopicPartition

        topic, number = _kafka_key(partition.name)
        backbeat_topic = self.topics.get(topic, topic)
        consumer = kafka_client(self.config, "reader")
        try:
            consumer.assign([TopicPartition(topic, number, partition.start)])
            offsets: list[int] = []
            values: list[bytes] = []
            position = partition.start
            while position < partition.end:
                for message in consumer.consume(min(10_000, partition.end - position), 1.0):
                    if message.error() is not None:
                        raise RuntimeError(f"{partition.name}: {message.error()}")
                    offset = message.offset()
                    if offset is None:
                        continue
                    if offset >= partition.end:
                        position = partition.end
                        break
                    offsets.append(offset)
                    values.append(message.value() or b"")
                    position = offset + 1
                if len(offsets) >= _ROWS_PER_BATCH:
                    yield _kafka_batch(backbeat_topic, partition.name, offsets, values)
                    offsets, values = [], []
                if position < partition.end:
                    # Records after ``position`` may be transaction markers, which are never
                    # delivered: the consumer's own position says where it really stands.
                    (where,) = consumer.position([TopicPartition(topic, number)])
                    if where.offset >= partition.end:
                        break
            if offsets:
                yield _kafka_batch(backbeat_topic, partition.name, offsets, values)
        finally:
            consumer.close()

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


class KafkaDataSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return "backbeat-kafka"

    def schema(self) -> str:
        return RAW_DDL

    def streamReader(self, schema: Any) -> KafkaStreamReader:
        return KafkaStreamReader(self.options)
