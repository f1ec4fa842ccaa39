"""De-duplication by ``eventId`` and by (``sessionId``, ``itemInSession``), within the horizon.

An event is a duplicate when an earlier valid, on-time event of the same topic had the same
``eventId`` or the same (``sessionId``, ``itemInSession``) *and* that earlier event is still
inside the event's watermark horizon (its ``ts`` is at or above the event's watermark, the one
that decided it was on time). Because the horizon is the event's own watermark, the verdict
depends only on the order of events, never on how they were cut into batches.

Keys are kept only while they can matter: a key older than the topic's watermark can never be
inside any later event's horizon, so it is dropped. Each commit writes only what changed
(the keys added and, per topic, the time below which keys were dropped:
:meth:`Deduplicator.changes`), which leaves the stored keys equal to :meth:`snapshot`; a
restart reloads them, so a crash never lets a duplicate in. Remembered keys count as earlier
rows of the batch: one pass over both finds every repeat. Each key remembers the partition
it came from, so a process that takes a partition over (a Kafka consumer group rebalance)
loads and later commits just that partition's keys.
Everything is vectorized (Arrow hashing, NumPy); there is no per-event Python.

Next: ``eventtime.py`` (the watermarks), ``pipeline.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from backbeat.scratch import scratch
from backbeat.sinks.base import SEEN_KEYS, SEEN_SCHEMA

I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

_STATE = SEEN_KEYS

_ITEM_BITS = 21
_SESSION_LIMIT = 1 << (63 - _ITEM_BITS)


def _repeats(con: duckdb.DuckDBPyConnection, values: pa.Array) -> tuple[I64, I64]:
    """Rows whose value occurs more than once in ``values``, and a code per such row.

    DuckDB's parallel hash aggregate finds the (usually zero) repeated values about 3x faster
    than hashing every value into an Arrow dictionary; only their rows get codes.
    """
    con.register("_values", pa.table({"v": values}))
    try:
        repeated = con.sql("SELECT v FROM _values GROUP BY v HAVING count(*) > 1").to_arrow_table()
    finally:
        con.unregister("_values")
    if repeated.num_rows == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    where = pc.fill_null(pc.index_in(values, value_set=repeated.column(0)), -1).to_numpy()
    rows = np.flatnonzero(where >= 0)
    return rows, where[rows].astype(np.int64)


def _fits(session: pa.Array | pa.ChunkedArray, item: pa.Array | pa.ChunkedArray) -> bool:
    """Whether every (sessionId, itemInSession) packs into one int64."""
    s = np.asarray(session, dtype=np.int64)
    i = np.asarray(item, dtype=np.int64)
    return len(s) == 0 or bool(
        s.min() >= 0 and s.max() < _SESSION_LIMIT and i.min() >= 0 and i.max() < (1 << _ITEM_BITS)
    )


def _pack(
    session: pa.Array | pa.ChunkedArray, item: pa.Array | pa.ChunkedArray, as_int: bool
) -> pa.Array | pa.ChunkedArray:
    """(sessionId, itemInSession) as one value: an int64 (see :func:`_fits`) or a string.

    Both sides of a comparison must be packed the same way.
    """
    if as_int:
        s = np.asarray(session, dtype=np.int64)
        return pa.array((s << _ITEM_BITS) | np.asarray(item, dtype=np.int64))
    return pc.binary_join_element_wise(
        pc.cast(session, pa.string()), pc.cast(item, pa.string()), ":"
    )


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _earlier_in_horizon(
    con: duckdb.DuckDBPyConnection, values: pa.Array, ts: I64, horizon: I64
) -> Mask:
    """Rows with an earlier row of the same value whose ts >= this row's horizon."""
    out = np.zeros(len(values), dtype=bool)
    rows, codes = _repeats(con, values)
    if len(rows) == 0:
        return out
    by_value = np.lexsort((rows, codes))  # by value, then by position
    order, code = rows[by_value], codes[by_value]
    t0 = int(ts[order].min())
    t = ts[order] - t0
    group = np.cumsum(np.r_[True, code[1:] != code[:-1]]) - 1
    first = np.r_[True, group[1:] != group[:-1]]
    shift = int(t.max()) + 1  # offsets keep each group's running max to itself
    if int(group[-1]) * shift < 2**62:
        running = np.maximum.accumulate(group * shift + t)
        previous = np.r_[0, running[:-1]] - group * shift + t0
    else:  # astronomically spread timestamps: per group, still vectorized inside
        previous = np.empty_like(t)
        for start, stop in zip(*_bounds(first), strict=True):
            seg = np.maximum.accumulate(t[start:stop])
            previous[start:stop] = np.r_[0, seg[:-1]] + t0
    out[order] = ~first & (previous >= horizon[order])
    return out


def _bounds(first: Mask) -> tuple[I64, I64]:
    starts = np.flatnonzero(first)
    return starts, np.r_[starts[1:], len(first)]


class Deduplicator:
    """Remembers recent keys per topic and filters batches against them."""

    def __init__(self, seen: pa.Table | None = None) -> None:
        self._seen: dict[str, pa.Table] = {}
        self._added: list[tuple[str, pa.Table]] = []  # since the last commit
        self._pruned: dict[str, int] = {}  # topic -> keys older than this were dropped since
        if seen is not None:
            self.restore(seen)

    def restore(self, seen: pa.Table) -> None:
        """Add remembered keys (``SEEN_SCHEMA`` rows) loaded from the store."""
        if not seen.num_rows:
            return
        seen = seen.cast(SEEN_SCHEMA)
        for topic in pc.unique(seen.column("topic")).to_pylist():
            rows = seen.filter(pc.equal(seen.column("topic"), topic)).select(_STATE.names)
            known = self._seen.get(topic)
            self._seen[topic] = pa.concat_tables([known, rows]) if known is not None else rows

    def forget(self, partitions: Collection[str]) -> None:
        """Drop the keys that came from ``partitions`` (another process owns them now)."""
        gone = pa.array(list(partitions), pa.string())

        def kept(table: pa.Table) -> pa.Table:
            return table.filter(pc.invert(pc.is_in(table.column("partition"), gone)))

        self._seen = {topic: kept(known) for topic, known in self._seen.items()}
        self._added = [(topic, kept(added)) for topic, added in self._added]

    def fresh_mask(
        self, topic: str, partition: str | pa.Array, table: pa.Table, horizon: I64, keep_from: int
    ) -> Mask:
        """Which rows of ``table`` (valid, on-time, in order) are not duplicates.

        Args:
            topic: the topic the rows belong to.
            partition: the partition they came from (remembered with their keys), or one per
                row (the slices of a batch, in the order they were read).
            table: the rows, with ``eventId``, ``sessionId``, ``itemInSession`` and ``ts``.
            horizon: per row, the watermark that judged it on time.
            keep_from: remember keys of rows with ``ts >= keep_from`` (older ones can never
                be inside a later event's horizon).
        """
        n = table.num_rows
        if n == 0:
            return np.zeros(0, dtype=bool)
        ids = table.column("eventId").combine_chunks()
        sessions, items = table.column("sessionId"), table.column("itemInSession")
        known = self._seen.get(topic)
        as_int = _fits(sessions, items) and (
            known is None or _fits(known.column("session_id"), known.column("item"))
        )
        keys = _pack(sessions, items, as_int)
        ts = table.column("ts").to_numpy()
        if known is not None and known.num_rows:
            # Remembered keys are earlier rows: one pass finds repeats inside the batch and
            # against earlier batches.
            m = known.num_rows
            old = _pack(known.column("session_id"), known.column("item"), as_int)
            ids = pa.concat_arrays([known.column("event_id").combine_chunks(), ids])
            keys = pa.concat_arrays([_flat(old), _flat(keys)])
            ts = np.concatenate([known.column("ts").to_numpy(), ts])
            horizon = np.concatenate([np.zeros(m, dtype=np.int64), horizon])
        else:
            m = 0
        dup = _earlier_in_horizon(scratch(), ids, ts, horizon)
        dup |= _earlier_in_horizon(scratch(), keys, ts, horizon)
        where = (
            pa.nulls(n, pa.string()).fill_null(partition)
            if isinstance(partition, str)
            else partition
        )
        added = pa.table(
            [ids[m:], sessions, items, table.column("ts"), where], schema=_STATE
        ).filter(pa.array(ts[m:] >= keep_from))
        self._seen[topic] = pa.concat_tables([known, added]) if known is not None else added
        self._added.append((topic, added))
        return ~dup[m:]

    def prune(self, topic: str, before_ts: int) -> None:
        """Forget keys of events older than ``before_ts`` (no later horizon reaches them)."""
        known = self._seen.get(topic)
        if known is not None:
            self._seen[topic] = known.filter(pc.greater_equal(known.column("ts"), before_ts))
            self._pruned[topic] = max(before_ts, self._pruned.get(topic, before_ts))

    def snapshot(self) -> pa.Table:
        """All remembered keys (``SEEN_SCHEMA``): what the store holds after each commit."""
        return _with_topic(self._seen.items())

    def changes(self) -> tuple[pa.Table, dict[str, int]]:
        """What changed since :meth:`clear_changes`, for the commit.

        Returns:
            The keys added and still remembered (``SEEN_SCHEMA``), and per topic the time
            before which keys were dropped. Applied to the stored keys of this process's
            partitions (delete those older than the time, insert the added ones) they give
            :meth:`snapshot` again.
        """
        added = []
        for topic, table in self._added:
            cut = self._pruned.get(topic)
            if cut is not None:
                table = table.filter(pc.greater_equal(table.column("ts"), cut))
            added.append((topic, table))
        return _with_topic(added), dict(self._pruned)

    def clear_changes(self) -> None:
        """The changes are committed (or thrown away with the state they came from)."""
        self._added.clear()
        self._pruned.clear()


def _with_topic(parts: Iterable[tuple[str, pa.Table]]) -> pa.Table:
    """Per-topic key tables as one ``SEEN_SCHEMA`` table."""
    tables = [
        t.add_column(0, "topic", pa.nulls(t.num_rows, pa.string()).fill_null(topic))
        for topic, t in parts
        if t.num_rows
    ]
    if not tables:
        return SEEN_SCHEMA.empty_table()
    return pa.concat_tables(tables).combine_chunks()
