"""What the executors do with a batch's records: the verdicts, partition by partition.

Each Spark task holds one source partition's records in order (``sources.py``); through
``mapInArrow`` it runs :func:`backbeat.engine.verdicts.judge` on them, the function the
embedded engine runs, starting from the partition's largest event time as the driver knows
it. It returns one wide table (:data:`WIDE`: every contract column of every topic, and ``_``
columns saying what each row is):

- ``_kind = "event"``: an on-time valid event, with its topic, partition, offset and horizon;
- ``_kind = "dead"`` / ``"late"``: a dead letter, with its reason and raw bytes;
- ``_kind = "mark"``: one per partition, its new largest event time and position.

Only the marks, the dead letters and de-dup keys go to the driver; the events stay on the
executors for the metrics (``engine.py``).

Next: ``engine.py`` (the batch on the driver), ``backbeat.engine.verdicts``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from backbeat.engine.eventtime import NO_TS, Watermarks
from backbeat.engine.verdicts import judge
from backbeat.events.codec import DeadLetter
from backbeat.events.schema import Topic, arrow_schema
from backbeat.transport.base import RawSlice


def _event_fields() -> list[pa.Field]:
    fields: dict[str, pa.Field] = {}
    for topic in Topic:
        for f in arrow_schema(topic):
            fields.setdefault(f.name, f.with_nullable(True))
    return list(fields.values())


META: Final = pa.schema(
    [
        ("_kind", pa.string()),
        ("_topic", pa.string()),
        ("_partition", pa.string()),
        ("_offset", pa.int64()),
        ("_horizon", pa.int64()),
        ("_reason", pa.string()),
        ("_raw", pa.binary()),
        ("_max_ts", pa.int64()),
        ("_position", pa.int64()),
    ]
)
WIDE: Final = pa.schema(list(META) + _event_fields())
"""The executors' output: what each row is, then every topic's contract columns."""
KINDS: Final = ("event", "dead", "late", "mark")

Prepare = Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]


def _rows(kind: str, topic: str, partition: str, n: int, **columns: pa.Array) -> pa.Table:
    """``n`` rows of :data:`WIDE` of one kind, the given columns set and the rest null."""
    fixed = {"_kind": pa.repeat(kind, n), "_topic": pa.repeat(topic, n),
             "_partition": pa.repeat(partition, n)}  # fmt: skip
    given = {**fixed, **columns}
    return pa.table(
        [given[f.name].cast(f.type) if f.name in given else pa.nulls(n, f.type) for f in WIDE],
        schema=WIDE,
    )


def _letters(kind: str, topic: str, partition: str, letters: list[DeadLetter]) -> pa.Table:
    return _rows(
        kind, topic, partition, len(letters),
        _offset=pa.array([d.offset for d in letters], pa.int64()),
        _reason=pa.array([d.reason for d in letters], pa.string()),
        _raw=pa.array([d.raw for d in letters], pa.binary()),
    )  # fmt: skip


def prepare_partition(
    records: pa.Table,
    max_ts: Mapping[str, int],
    lateness_ms: int,
    max_future_ms: int | None,
    now_ms: int,
) -> pa.Table:
    """The :data:`WIDE` rows of one task's records (``sources.RAW`` rows, each partition's in
    order), judged from the partitions' largest event times ``max_ts``."""
    parts: list[pa.Table] = []
    names = records.column("partition")
    for name in pc.unique(names).to_pylist():
        mine = records.filter(pc.equal(names, name))
        topic_name = mine.column("topic")[0].as_py()
        before = max_ts.get(name, NO_TS)
        marks = Watermarks(lateness_ms, {name: before}, {})
        piece = RawSlice(
            topic=topic_name,
            partition=name,
            payloads=mine.column("value").to_pylist(),
            offsets=mine.column("offset").to_numpy(),
            next_position=int(pc.max(mine.column("next")).as_py()),
        )
        verdicts = judge(piece, marks, lateness_ms, max_future_ms, now_ms)
        topic = topic_name if verdicts.topic is None else verdicts.topic.value
        if verdicts.dead:
            parts.append(_letters("dead", topic, name, verdicts.dead))
        if verdicts.late:
            parts.append(_letters("late", topic, name, verdicts.late))
        table = verdicts.table
        if table is not None and table.num_rows:
            columns = {c: table.column(c).combine_chunks() for c in table.column_names}
            parts.append(
                _rows(
                    "event", topic, name, table.num_rows,
                    _offset=pa.array(verdicts.offsets, pa.int64()),
                    _horizon=pa.array(verdicts.horizons, pa.int64()),
                    **columns,
                )
            )  # fmt: skip
        parts.append(
            _rows(
                "mark", topic, name, 1,
                _max_ts=pa.array([marks.max_ts.get(name, before)], pa.int64()),
                _position=pa.array([piece.next_position], pa.int64()),
            )
        )  # fmt: skip
    return pa.concat_tables(parts) if parts else WIDE.empty_table()


def preparer(
    max_ts: Mapping[str, int], lateness_ms: int, max_future_ms: int | None, now_ms: int
) -> Prepare:
    """The ``mapInArrow`` function of one batch (a closure Spark ships to the executors)."""
    known = dict(max_ts)

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        records = pa.Table.from_batches(list(batches))
        if not records.num_rows:
            return
        out = prepare_partition(records, known, lateness_ms, max_future_ms, now_ms)
        yield from out.to_batches(max_chunksize=50_000)

    return run
