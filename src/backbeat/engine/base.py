"""The engine contract: run a source through the analytics into a store and result sinks.

An :class:`Engine` is built from a source, the primary store, the secondary sinks and
:class:`EngineSettings`, and runs until the source is exhausted, a bound is reached or it is
asked to stop (after committing the batch in flight). Every engine commits with the same
contracts (``backbeat.sinks.base``), so a store fed by one engine reads the same as one fed by
another. Engines are chosen by name (``registry.py``): ``embedded`` (``pipeline.py``).

Next: ``pipeline.py`` (the embedded engine), ``registry.py``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa

from backbeat.sinks.base import BatchStats


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Knobs of the micro-batch loop.

    Attributes:
        lateness_ms: how far behind a partition's latest event time an event may arrive.
        max_batch_events: upper bound of messages per micro-batch.
        idle_sleep_s: pause when the source has nothing ready.
        max_future_ms: events stamped further than this ahead of the wall clock are dead
            letters (a broken device clock must not push the watermark into the future);
            None for sources whose clock runs ahead on purpose (the accelerated demo).
        overlap_commit: commit each batch on a background thread while the next one is
            processed (one batch in flight; off for sources whose partitions come and go).
        catalog: what a catalog knows of tracks (``backbeat.replay.catalog.lookup``): fills
            listens' missing track, genre, mood and duration (``enrich.py``); None: nothing.
        options: the chosen engine's own settings (the Spark engine's master, checkpoint,
            trigger and ``conf.<key>`` entries); an engine refuses ones it does not know.
    """

    lateness_ms: int = 120_000
    max_batch_events: int = 500_000
    idle_sleep_s: float = 0.05
    max_future_ms: int | None = 86_400_000
    overlap_commit: bool = True
    catalog: pa.Table | None = None
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class RunReport(BatchStats):
    """What a run committed: the sum of its batches' counts and phases, and why it stopped."""

    batches: int = 0
    stopped_by: str = ""
    last: BatchStats = field(default_factory=BatchStats)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, stats: BatchStats) -> None:
        """Count one committed batch (from whichever thread committed it)."""
        with self._lock:
            self.batches += 1
            self.events_in += stats.events_in
            self.accepted += stats.accepted
            self.duplicates += stats.duplicates
            self.late += stats.late
            self.dead += stats.dead
            for phase, seconds in stats.phases.items():
                self.phases[phase] = self.phases.get(phase, 0.0) + seconds
            self.last = stats


OnBatch = Callable[[BatchStats, RunReport], None]
"""Told of each committed batch and the run so far (on the thread that committed it)."""
OnError = Callable[[str, BaseException], None]
"""Told that the store (``"store"``) or a result sink (by name) failed a batch, with the
error, before the run raises it (on the thread that committed)."""


class Engine(ABC):
    """Runs a source through the analytics into the sinks, exactly once."""

    @abstractmethod
    def run(self, max_events: int | None = None, timeout: float | None = None) -> RunReport:
        """Process until the source is exhausted, ``max_events`` were read, ``timeout``
        seconds passed, or :meth:`stop` / Ctrl-C / SIGTERM (after committing the batch in
        flight); the report counts what was committed."""

    @abstractmethod
    def stop(self) -> None:
        """Ask :meth:`run` to commit the batch in flight and return (any thread)."""

    @abstractmethod
    def close(self) -> None:
        """Release the source and the sinks (the store belongs to the caller)."""

    @property
    def ui_url(self) -> str | None:
        """Where the engine's own web UI is (the Spark UI); None when it has none."""
        return None
