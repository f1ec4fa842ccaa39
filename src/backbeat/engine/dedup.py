"""De-duplication by ``eventId`` and by (``sessionId``, ``itemInSession``), per topic.

An event is a duplicate when an earlier valid, on-time event of the same topic had the same
``eventId`` or the same (``sessionId``, ``itemInSession``). Keys are kept only while they can
matter: once the topic's watermark passes a key's event time, any copy of that event would be
late anyway, so the key is dropped. The remembered keys are committed with every batch (they
are small: one watermark horizon) and reloaded on restart, so a crash never lets a duplicate in.
Everything is vectorized (Arrow hashing, NumPy masks); there is no per-event Python.

Next: ``eventtime.py`` (the watermark that bounds the state), ``pipeline.py``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

_KEY_FIELDS = [
    ("event_id", pa.string()),
    ("session_id", pa.int64()),
    ("item", pa.int32()),
    ("ts", pa.int64()),
]
_KEYS = pa.schema(_KEY_FIELDS)
SEEN_SCHEMA = pa.schema([("topic", pa.string()), *_KEY_FIELDS])

_ITEM_BITS = 21
_SESSION_LIMIT = 1 << (63 - _ITEM_BITS)


def _first_occurrences(values: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.bool_]:
    """True at the first occurrence of each value (dictionary codes grow in order of appearance)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    codes = pc.dictionary_encode(values).indices.to_numpy()
    if len(codes) == 0:
        return np.zeros(0, dtype=bool)
    seen_max = np.maximum.accumulate(codes)
    first = np.empty(len(codes), dtype=bool)
    first[0] = True
    first[1:] = codes[1:] > seen_max[:-1]
    return first


def _pack(session: pa.Array | pa.ChunkedArray, item: pa.Array | pa.ChunkedArray) -> pa.Array:
    """(sessionId, itemInSession) as one value: an int64 when both fit, else a string."""
    s = np.asarray(session, dtype=np.int64)
    i = np.asarray(item, dtype=np.int64)
    if len(s) == 0 or (
        s.max() < _SESSION_LIMIT and s.min() >= 0 and i.max() < (1 << _ITEM_BITS) and i.min() >= 0
    ):
        return pa.array((s << _ITEM_BITS) | i)
    return pc.binary_join_element_wise(
        pc.cast(session, pa.string()), pc.cast(item, pa.string()), ":"
    )


class Deduplicator:
    """Remembers recent keys per topic and filters batches against them."""

    def __init__(self, seen: pa.Table | None = None) -> None:
        self._seen: dict[str, pa.Table] = {}
        if seen is not None and seen.num_rows:
            for topic in pc.unique(seen.column("topic")).to_pylist():
                rows = seen.filter(pc.equal(seen.column("topic"), topic))
                self._seen[topic] = rows.select(_KEYS.names).cast(_KEYS)

    def fresh_mask(self, topic: str, table: pa.Table, horizon_ts: int) -> npt.NDArray[np.bool_]:
        """Which rows of ``table`` (valid, on-time, in order) are not duplicates.

        Remembers the keys of all rows with ``ts >= horizon_ts`` (older ones can only recur
        as late events, which never reach this filter).
        """
        n = table.num_rows
        if n == 0:
            return np.zeros(0, dtype=bool)
        ids = table.column("eventId")
        keys = _pack(table.column("sessionId"), table.column("itemInSession"))
        keep = _first_occurrences(ids) & _first_occurrences(keys)
        known = self._seen.get(topic)
        if known is not None and known.num_rows:
            keep &= ~pc.is_in(ids, value_set=known.column("event_id")).to_numpy(
                zero_copy_only=False
            )
            old = _pack(known.column("session_id"), known.column("item"))
            if old.type != keys.type:
                keys, old = pc.cast(keys, pa.string()), pc.cast(old, pa.string())
            keep &= ~pc.is_in(keys, value_set=old).to_numpy(zero_copy_only=False)
        added = pa.table(
            [ids, table.column("sessionId"), table.column("itemInSession"), table.column("ts")],
            schema=_KEYS,
        ).filter(pc.greater_equal(table.column("ts"), horizon_ts))
        self._seen[topic] = pa.concat_tables([known, added]) if known is not None else added
        return keep

    def prune(self, topic: str, before_ts: int) -> None:
        """Forget keys of events older than ``before_ts`` (copies of them would be late)."""
        known = self._seen.get(topic)
        if known is not None:
            self._seen[topic] = known.filter(pc.greater_equal(known.column("ts"), before_ts))

    def snapshot(self) -> pa.Table:
        """All remembered keys, to commit with the batch."""
        tables = [
            t.add_column(0, "topic", pa.array([topic] * t.num_rows, pa.string()))
            for topic, t in self._seen.items()
            if t.num_rows
        ]
        if not tables:
            return SEEN_SCHEMA.empty_table()
        return pa.concat_tables(tables).combine_chunks()
