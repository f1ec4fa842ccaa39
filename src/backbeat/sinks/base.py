"""The store contract: commit a batch's results and the source position atomically.

A :class:`Commit` carries everything one micro-batch changes: partial aggregates, dead
letters, per-partition positions and maximum event times, the change to the de-duplication
keys (added, and dropped once out of the horizon), batch statistics and the CSV sink's mark.
A store applies it in ONE transaction, so after a crash the store is either before or after
the batch, never in between; on start the engine reads :class:`EngineState` back and resumes
from it.

Several engine processes may share one store (members of one Kafka consumer group, each
owning some partitions). A commit is therefore *fenced*: it names the position it expects
each of its partitions to be at, and the store refuses the whole commit
(:class:`~backbeat.errors.FencedError`) when another process has moved one of them, so a
process that lost a partition without noticing can never double its events.

Next: ``duckdb_store.py`` (the embedded store), ``csv_sink.py``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

DEAD_LETTER_SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.string()),
        ("offset", pa.int64()),
        ("reason", pa.string()),
        ("raw", pa.binary()),
    ]
)


@dataclass(frozen=True, slots=True)
class CsvMark:
    """What the CSV file must hold: windows before ``until`` in ``size_after`` bytes.

    The last append covered windows in ``[until_before, until)`` starting at byte
    ``size_before``; recovery truncates there and writes those windows again.
    """

    path: str
    until_before: int
    until: int
    size_before: int
    size_after: int


@dataclass(frozen=True, slots=True)
class PartitionState:
    """Where a partition stands: its topic, resume position and largest valid event time."""

    topic: str
    position: int
    max_ts: int


@dataclass(slots=True)
class BatchStats:
    """Counts for one micro-batch, and seconds spent per phase (source, decode, aggregate...).

    ``seconds`` as stored with a commit covers the batch up to the commit (the commit itself
    cannot time itself); the ``commit`` phase and a run's total include it.
    """

    events_in: int = 0
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    dead: int = 0
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    batch_id: int = 0
    """The id the store gave the batch (0 until it is committed)."""

    def timed(self, phase: str, since: float) -> float:
        """Add the time since ``since`` (perf_counter) to ``phase``; return now."""
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - since
        return now


@dataclass(frozen=True, slots=True)
class EngineState:
    """What the engine needs to resume exactly where the last commit left off.

    ``seen`` rows carry the partition they came from, so a process that takes over a
    partition can load just that partition's keys.
    """

    batch_id: int = 0
    partitions: dict[str, PartitionState] = field(default_factory=dict)
    seen: pa.Table | None = None
    csv: dict[str, CsvMark] = field(default_factory=dict)
    """CSV marks by file path (a store may have fed several CSV files over time)."""


@dataclass(frozen=True, slots=True)
class Commit:
    """Everything one micro-batch changes, applied atomically.

    Attributes:
        partitions: the committing process's partitions, where they now stand.
        expected: for each of ``partitions``, the position the process last read from or
            wrote to the store (None: no row yet); the commit is refused if one differs.
        seen: de-dup keys of ``partitions`` remembered since the last commit (``SEEN_SCHEMA``).
        seen_pruned: per topic, a time: stored keys of ``partitions`` (and keys without a
            partition) of that topic stamped before it are no longer needed.
        listens: the batch's fresh listen events (contract columns), kept by the store for
            filtered reads (the API's live event table, filtered top lists); None: none.
    """

    partials: dict[str, pa.Table]
    dead_letters: pa.Table
    partitions: dict[str, PartitionState]
    expected: dict[str, int | None]
    seen: pa.Table
    stats: BatchStats
    csv: CsvMark | None = None
    seen_pruned: dict[str, int] = field(default_factory=dict)
    listens: pa.Table | None = None


class Store(ABC):
    """A durable home for results that commits batches atomically."""

    @abstractmethod
    def load_state(self) -> EngineState:
        """The state as of the last successful commit (empty for a new store)."""

    @abstractmethod
    def load_partitions(self, partitions: Sequence[str]) -> EngineState:
        """The stored state of just these partitions (a process taking them over)."""

    @abstractmethod
    def commit(self, commit: Commit) -> int:
        """Apply ``commit`` in one transaction; return the batch id it was given.

        Raises:
            FencedError: another process moved one of the commit's partitions.
            StoreError: the store cannot be written.
        """

    @abstractmethod
    def metric(self, name: str, where: str = "", params: tuple[object, ...] = ()) -> pa.Table:
        """The merged rows of a metric (optionally filtered), sorted by its keys."""

    @abstractmethod
    def close(self) -> None:
        """Release the store."""
