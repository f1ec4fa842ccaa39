"""One micro-batch in the making: its fresh events per topic, its dead letters, its counts.

The pipeline fills a :class:`Batch` slice by slice (decode, validate, late check), then drops
duplicates per topic; what is left in :attr:`Batch.fresh` is what the analytics aggregate and
the sinks receive. Dead letters keep the raw bytes of the record as it arrived (for typed
in-process slices: the row as JSON).

Next: ``pipeline.py`` (who fills it), ``backbeat.events.codec`` (decode and validation).
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from backbeat.events.codec import DeadLetter, validate_table
from backbeat.events.schema import Topic
from backbeat.sinks.base import DEAD_LETTER_SCHEMA, BatchStats
from backbeat.transport.base import ArrowSlice, RawSlice, Slice


class Batch:
    """Accumulates one micro-batch's fresh events, dead letters and counts."""

    def __init__(self) -> None:
        self.on_time: dict[Topic, list[tuple[str, pa.Table, np.ndarray]]] = {}
        self.fresh: dict[Topic, pa.Table] = {}
        self.dead: list[tuple[str, str, DeadLetter]] = []
        self.stats = BatchStats()

    def reject(
        self, topic: str, partition: str, letters: list[DeadLetter], late: bool = False
    ) -> None:
        """Add dead letters of one partition (counted as late events with ``late``)."""
        self.dead.extend((topic, partition, letter) for letter in letters)
        if late:
            self.stats.late += len(letters)
        else:
            self.stats.dead += len(letters)

    def dead_table(self) -> pa.Table:
        """The dead letters as a ``DEAD_LETTER_SCHEMA`` table."""
        if not self.dead:
            return DEAD_LETTER_SCHEMA.empty_table()
        topic, partition, letters = zip(*self.dead, strict=True)
        return pa.table(
            [
                pa.array(topic, pa.string()),
                pa.array(partition, pa.string()),
                pa.array([d.offset for d in letters], pa.int64()),
                pa.array([d.reason for d in letters], pa.string()),
                pa.array([d.raw for d in letters], pa.binary()),
            ],
            schema=DEAD_LETTER_SCHEMA,
        )


def checked(topic: Topic, piece: ArrowSlice) -> tuple[pa.Table, np.ndarray, list[DeadLetter]]:
    """Validate an in-process slice (already typed) against the contract."""
    decoded = validate_table(topic, piece.table, piece.offsets, lambda idx: _rows_json(piece, idx))
    return decoded.table, decoded.offsets, decoded.dead


def _rows_json(piece: ArrowSlice, idx: list[int]) -> list[bytes]:
    """Rows of a typed slice as JSON, for dead letters (any columns, as they came)."""
    rows = piece.table.take(pa.array(idx, pa.int64())).to_pylist()
    return [json.dumps(r, default=str, sort_keys=False).encode() for r in rows]


def raws_at(piece: Slice, offsets: np.ndarray) -> list[bytes]:
    """Raw bytes of the messages at ``offsets`` (for dead letters)."""
    idx = np.searchsorted(piece.offsets, offsets).tolist()
    if isinstance(piece, RawSlice):
        return [bytes(piece.payloads[i]) for i in idx]
    return _rows_json(piece, idx)
