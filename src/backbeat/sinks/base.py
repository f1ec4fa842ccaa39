"""The sink contracts: a checkpoint, result sinks, and the primary store that is both.

- A :class:`Checkpoint` keeps where each source partition stands (its position and largest
  event time), the de-duplication keys still inside the horizon, and a *resume mark* per
  secondary sink, and applies each batch's changes to them in the primary store's
  transaction, so after a crash the store is either before or after a batch, never between.
  A commit is *fenced*: it names the position it expects each of its partitions to be at and
  is refused whole (:class:`~backbeat.errors.FencedError`) when another process moved one,
  so a process that lost a partition without noticing can never double its events.
- A :class:`ResultSink` receives every committed batch: the partial aggregates, the batch's
  valid events (one table per topic) and its dead letters. The engine asks each sink for its
  resume mark before the store commits (:meth:`ResultSink.begin`), commits the marks with the
  batch, then calls :meth:`ResultSink.write`; on start it hands each sink its last committed
  mark (:meth:`ResultSink.resume`) so the sink can finish or redo that write. Each sink
  states its :class:`Guarantee`.
- A :class:`Store` is the primary: checkpoint and results in one transaction per batch, and
  a :class:`~backbeat.sinks.queries.Reader` for what it holds.

Next: ``queries.py`` (the reader contract), ``registry.py`` (backends by name),
``duckdb/store.py`` (the embedded store), ``csv.py`` (the simplest result sink).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from backbeat.errors import FencedError
from backbeat.events.schema import Topic

if TYPE_CHECKING:
    from backbeat.sinks.queries import Reader
    from backbeat.transport.kafka.settings import KafkaSettings

DEAD_LETTER_SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.string()),
        ("offset", pa.int64()),
        ("reason", pa.string()),
        ("raw", pa.binary()),
    ]
)
SEEN_KEYS = pa.schema(
    [
        ("event_id", pa.string()),
        ("session_id", pa.int64()),
        ("item", pa.int32()),
        ("ts", pa.int64()),
        ("partition", pa.string()),
    ]
)
"""One remembered de-dup key: the event's keys, its time and the partition it came from."""
SEEN_SCHEMA = pa.schema([("topic", pa.string()), *SEEN_KEYS])
"""De-dup keys of every topic, as a checkpoint stores them."""

Mark = dict[str, Any]
"""A secondary sink's resume mark: a JSON object only the sink reads."""


class Guarantee(StrEnum):
    """What a sink promises about each batch after crashes and restarts."""

    EXACTLY_ONCE = "exactly once"
    """A replayed batch overwrites or is skipped: never doubled, never lost."""
    AT_LEAST_ONCE = "at least once"
    """Never lost; a crash at the wrong moment may repeat a batch's records (they carry the
    batch id, so repeats can be recognized)."""


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
    dead_reasons: dict[str, int] = field(default_factory=dict)
    """Dead letters (late ones included) by kind of reason: the part of the reason before
    its first colon (``not_json``, ``missing_field``, ``late``...)."""
    watermarks: dict[str, int | None] = field(default_factory=dict)
    """Each topic's event-time watermark after the batch (epoch ms; None: none yet)."""

    def timed(self, phase: str, since: float) -> float:
        """Add the time since ``since`` (perf_counter) to ``phase``; return now."""
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - since
        return now


@dataclass(frozen=True, slots=True)
class CheckpointState:
    """What the engine and the sinks need to resume exactly where the last commit left off.

    ``seen`` rows carry the partition they came from, so a process that takes over a
    partition can load just that partition's keys.
    """

    batch_id: int = 0
    partitions: dict[str, PartitionState] = field(default_factory=dict)
    seen: pa.Table | None = None
    marks: dict[str, Mark] = field(default_factory=dict)
    """Resume marks by sink key, as committed with the sink's last batch."""


@dataclass(frozen=True, slots=True)
class SinkBatch:
    """One micro-batch's results, as every sink receives them.

    Attributes:
        partials: partial aggregate rows per metric (``backbeat.analytics.metrics``).
        events: the batch's valid, on-time, de-duplicated events, one table per topic
            (contract columns); topics without events are absent. It holds at least the
            topics some sink wants (:func:`wanted_topics`); an engine may hand more.
        dead_letters: the batch's bad records (``DEAD_LETTER_SCHEMA``).
        watermarks: per topic name, the event time up to which every 1-minute window is
            final after this batch (None: not known yet).
    """

    partials: Mapping[str, pa.Table]
    events: Mapping[Topic, pa.Table]
    dead_letters: pa.Table
    watermarks: Mapping[str, int | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Commit:
    """Everything one micro-batch changes in the primary store, applied atomically.

    Attributes:
        batch: the results.
        partitions: the committing process's partitions, where they now stand.
        expected: for each of ``partitions``, the position the process last read from or
            wrote to the store (None: no row yet); the commit is refused if one differs.
        seen: de-dup keys of ``partitions`` remembered since the last commit (``SEEN_SCHEMA``).
        seen_pruned: per topic, a time: stored keys of ``partitions`` (and keys without a
            partition) of that topic stamped before it are no longer needed.
        stats: the batch's counts and timings.
        marks: the secondary sinks' resume marks for this batch, by sink key.
    """

    batch: SinkBatch
    partitions: dict[str, PartitionState]
    expected: dict[str, int | None]
    seen: pa.Table
    stats: BatchStats
    seen_pruned: dict[str, int] = field(default_factory=dict)
    marks: dict[str, Mark] = field(default_factory=dict)


def refuse_moved(expected: Mapping[str, int | None], stored: Mapping[str, int]) -> None:
    """The fence: refuse a commit whose partitions are no longer where the committing process
    saw them (``stored``: the positions the store holds, read in the commit's transaction).

    Raises:
        FencedError: one or more partitions moved.
    """
    moved = sorted(p for p, pos in expected.items() if stored.get(p) != pos)
    if moved:
        shown = ", ".join(
            f"{p} (expected {expected[p]}, stored {stored.get(p)})" for p in moved[:5]
        )
        raise FencedError(
            f"another process committed {len(moved)} of this batch's partitions: {shown}",
            moved,
        )


class Checkpoint(ABC):
    """Positions, de-dup keys, fencing and sink marks, kept by the primary store."""

    @abstractmethod
    def load_state(self) -> CheckpointState:
        """The state as of the last successful commit (empty for a new store)."""

    @abstractmethod
    def load_partitions(self, partitions: Sequence[str]) -> CheckpointState:
        """The stored state of just these partitions (a process taking them over)."""

    @abstractmethod
    def save_marks(self, marks: Mapping[str, Mark]) -> None:
        """Record sinks' marks outside a batch (after their last write, at a clean stop)."""


class Store(Checkpoint):
    """The primary store: checkpoint and results committed in one transaction per batch,
    exactly once (a batch whose partitions already moved on is refused, never doubled)."""

    name: ClassVar[str]
    guarantee: ClassVar[Guarantee] = Guarantee.EXACTLY_ONCE

    @classmethod
    @abstractmethod
    def at(cls, location: str, *, shared: bool = False) -> Store:
        """The store at a ``--store`` location, for writing (created when new); ``shared``:
        several processes write it.

        Raises:
            ConfigError: a location this backend cannot use.
            StoreError, StoreLockedError: it cannot be opened.
        """

    @classmethod
    @abstractmethod
    def reader_at(cls, location: str) -> Reader:
        """Named queries over the store at ``location``, written by another process.

        Raises:
            StoreError: there is no store there.
        """

    @abstractmethod
    def commit(self, commit: Commit) -> int:
        """Apply ``commit`` in one transaction; return the batch id it was given.

        Raises:
            FencedError: another process moved one of the commit's partitions.
            StoreError: the store cannot be written.
        """

    @abstractmethod
    def reader(self) -> Reader:
        """Named queries over this store, from any thread of this process."""

    @abstractmethod
    def reset(self) -> None:
        """Delete every result, dead letter, position and mark (one transaction)."""

    @abstractmethod
    def close(self) -> None:
        """Release the store."""


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """A secondary sink as the user chose it: ``--sink NAME``, its target (``--csv FILE``)
    and its other options (``--sink-option NAME.KEY=VALUE``)."""

    name: str
    target: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    kafka: KafkaSettings | None = None
    """The run's Kafka settings, for sinks that write to Kafka."""


class ResultSink(ABC):
    """Receives every committed batch, with a stated guarantee.

    Order of calls: :meth:`resume` once at start, then per batch :meth:`begin` (before the
    store commits; the mark it returns is committed with the batch) and :meth:`write` (after
    the commit), then :meth:`settle` and :meth:`close` at a clean stop. A sink added to a
    store that already has batches receives the batches after them.
    """

    name: ClassVar[str]
    guarantee: ClassVar[Guarantee]
    single_writer: ClassVar[bool] = False
    """True when one process must write every partition (no consumer groups)."""
    wants_events: ClassVar[frozenset[Topic]] = frozenset({Topic.LISTEN})
    """The topics whose events :meth:`begin` and :meth:`write` read; an engine that must
    collect events to hand them over (Spark, to the driver) may leave the others out."""

    @property
    @abstractmethod
    def key(self) -> str:
        """This sink's identity in the checkpoint (its name and target)."""

    @classmethod
    @abstractmethod
    def from_spec(cls, spec: SinkSpec) -> ResultSink:
        """Build the sink from the user's choice.

        Raises:
            ConfigError: a missing or bad option.
        """

    def resume(self, batch_id: int, mark: Mark | None, reader: Reader) -> None:  # noqa: B027
        """At start: ``batch_id`` is the store's last batch and ``mark`` this sink's mark as
        committed with it (None: a sink new to this store); finish or redo that write."""

    def begin(self, batch: SinkBatch) -> Mark | None:
        """Before the store commits ``batch``: plan the write; the mark to commit with it."""
        return None

    @abstractmethod
    def write(
        self,
        batch_id: int,
        partials: Mapping[str, pa.Table],
        events: Mapping[Topic, pa.Table],
        dead_letters: pa.Table,
    ) -> None:
        """After the store committed batch ``batch_id``: write it (as planned by :meth:`begin`).

        Raises:
            BackbeatError: the write failed; the engine stops, and :meth:`resume` redoes it
                at the next start.
        """

    def settle(self) -> Mark | None:
        """The mark after the last write, saved at a clean stop (None: nothing to save)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the sink holds (may be called more than once)."""


def wanted_topics(sinks: Iterable[ResultSink]) -> frozenset[Topic]:
    """The topics whose events a batch must carry: listens (the store keeps them) and every
    topic one of ``sinks`` wants."""
    return frozenset({Topic.LISTEN}).union(*(sink.wants_events for sink in sinks))
