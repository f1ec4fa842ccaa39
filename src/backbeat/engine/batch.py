"""One micro-batch in the making: its fresh events per topic, its dead letters, its counts.

The pipeline fills a :class:`Batch` slice by slice (decode, validate, late check), then drops
duplicates per topic; what is left in :attr:`Batch.fresh` is what the analytics aggregate and
the sinks receive. Dead letters keep the raw bytes of the record as it arrived (for typed
in-process slices: the row as JSON).

Next: ``pipeline.py`` (who fills it), ``backbeat.events.codec`` (decode and validation).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from backbeat.events.codec import DeadLetter
from backbeat.events.schema import Topic
from backbeat.sinks.base import DEAD_LETTER_SCHEMA, BatchStats


def count_reasons(reasons: Iterable[str], counts: dict[str, int]) -> None:
    """Count dead letters' reasons by kind into ``counts``: the part before the first colon
    (``"missing_field: userId"`` counts as ``missing_field``), a bounded set of names."""
    for reason in reasons:
        kind = reason.partition(":")[0].strip() or "unknown"
        counts[kind] = counts.get(kind, 0) + 1


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
        count_reasons((letter.reason for letter in letters), self.stats.dead_reasons)
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
