"""The embedded engine: a micro-batch loop with exactly-once commits.

One step: poll slices from the source -> decode and validate (bad records become dead
letters) -> mark late events per partition -> drop duplicates -> aggregate the fresh events
into partials (``backbeat.analytics``) -> hand the batch to the :class:`~.commit.Committer`,
which commits results, dead letters, positions, watermarks, de-dup keys and the sinks' marks
in ONE store transaction, then has every result sink write the batch. On start the engine
reads that state back, lets each sink finish its last write, and tells the source where to
resume, so a kill -9 at any moment loses nothing and doubles nothing. The engine knows sinks
only by their contract (``backbeat.sinks.base``).

When the source's partitions come and go (a Kafka consumer group, several engine processes
sharing one store), the engine holds state only for the partitions it owns: it loads a
partition's position, watermark and de-dup keys from the store when it is given one, drops
them when it loses one, and every commit is fenced by the positions it started from. Such a
source commits each batch before the next poll, so a revocation (served inside the poll)
never finds a batch in flight; a commit refused because another process moved a partition is
discarded and the engine resumes from the store.

Next: ``commit.py``, ``batch.py``, ``eventtime.py``, ``dedup.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from backbeat.analytics.compute import BatchAggregator
from backbeat.engine.base import Engine, EngineSettings, OnBatch, OnError, RunReport
from backbeat.engine.batch import Batch
from backbeat.engine.commit import Committer
from backbeat.engine.dedup import Deduplicator
from backbeat.engine.enrich import Enricher
from backbeat.engine.eventtime import NO_TS, Watermarks
from backbeat.engine.lifecycle import graceful_interrupt, report_commit, resume_sinks, settle_sinks
from backbeat.engine.verdicts import judge
from backbeat.errors import ConfigError, FencedError
from backbeat.events.schema import Topic
from backbeat.sinks.base import (
    BatchStats,
    CheckpointState,
    Commit,
    PartitionState,
    ResultSink,
    SinkBatch,
    Store,
)
from backbeat.transport.base import Slice, Source

log = logging.getLogger(__name__)


class Pipeline(Engine):
    """Runs the micro-batch loop from a source into a store and result sinks."""

    def __init__(
        self,
        source: Source,
        store: Store,
        sinks: Sequence[ResultSink] = (),
        settings: EngineSettings | None = None,
        on_batch: OnBatch | None = None,
        on_error: OnError | None = None,
    ) -> None:
        """``on_batch`` is told of each committed batch, on the thread that committed it;
        ``on_error`` of a store or sink failing one (before the run raises the error).

        Raises:
            ConfigError: a sink needs one writer and the source is shared by a group.
        """
        self.source = source
        self.store = store
        self.sinks = list(sinks)
        self.settings = settings or EngineSettings()
        self.on_batch = on_batch
        self._aggregator = BatchAggregator()
        catalog = self.settings.catalog
        self._enricher = Enricher(catalog) if catalog is not None else None
        self._stop = threading.Event()
        self._report = RunReport()
        self._dynamic = self.source.listen(self._assigned, self._revoked)
        for sink in self.sinks:
            if sink.single_writer and self._dynamic:
                raise ConfigError(
                    f"the {sink.name} sink needs one process that reads every partition: drop "
                    f"it or --group (query the store for the same results)"
                )
        self._committer = Committer(
            store,
            self.sinks,
            self._committed,
            self.settings.overlap_commit and not self._dynamic,
            on_error,
        )
        self._restore(store.load_state())

    def _restore(self, state: CheckpointState) -> None:
        self._watermarks = Watermarks(self.settings.lateness_ms, {}, {})
        self._dedup = Deduplicator()
        self._partitions: dict[str, PartitionState] = {}
        self._expected: dict[str, int | None] = {}
        if not self._dynamic:
            self._hold(state)  # fixed partitions: all of them, from the start
        resume_sinks(self.store, self.sinks, state)
        self.source.open({p: s.position for p, s in state.partitions.items()})
        if state.batch_id:
            log.info(
                "resuming after batch %d (%d partitions)", state.batch_id, len(self._partitions)
            )

    def _hold(self, state: CheckpointState) -> None:
        """Take partitions over at their stored state (position, watermark, de-dup keys)."""
        for name, part in state.partitions.items():
            self._partitions[name] = part
            self._expected[name] = part.position
            self._watermarks.restore(name, part.topic, part.max_ts)
        if state.seen is not None:
            self._dedup.restore(state.seen)

    def _assigned(self, names: Sequence[str]) -> dict[str, int]:
        """The source was given ``names``: load their state from the store, say where to resume."""
        self._revoked(names)
        state = self.store.load_partitions(names)
        self._hold(state)
        for name in names:
            self._expected.setdefault(name, None)
        return {name: part.position for name, part in state.partitions.items()}

    def _revoked(self, names: Sequence[str]) -> None:
        """The source lost ``names``: forget their state (their last batch is committed)."""
        for name in names:
            self._partitions.pop(name, None)
            self._expected.pop(name, None)
        self._watermarks.forget(names)
        self._dedup.forget(names)

    def stop(self) -> None:
        self._stop.set()

    def _committed(self, stats: BatchStats) -> None:
        """A batch is committed and written (on the committer's thread)."""
        report_commit(self._report, stats, self.on_batch)

    # ------------------------------------------------------------------ loop

    def run(self, max_events: int | None = None, timeout: float | None = None) -> RunReport:
        self._report = report = RunReport()
        started = time.monotonic()
        read = 0
        with graceful_interrupt(self.stop):
            try:
                while True:
                    if self._stop.is_set():
                        report.stopped_by = "interrupted"
                        break
                    if timeout is not None and time.monotonic() - started >= timeout:
                        report.stopped_by = "timeout"
                        break
                    budget = self.settings.max_batch_events
                    if max_events is not None:
                        if read >= max_events:
                            report.stopped_by = "max_events"
                            break
                        budget = min(budget, max_events - read)
                    count = self.step(budget)
                    if count is None:
                        if self.source.exhausted:
                            report.stopped_by = "exhausted"
                            break
                        if self._committer.failed():
                            self._settle()  # raises the batch in flight's error now
                        time.sleep(self.settings.idle_sleep_s)
                        continue
                    read += count
            finally:
                self._settle()
        report.seconds = time.monotonic() - started
        return report

    def _settle(self) -> bool:
        """Wait for the batch in flight; False if the store refused it (state reloaded)."""
        try:
            self._committer.wait()
        except FencedError as exc:
            log.warning("batch discarded: %s; resuming those partitions from the store", exc)
            self._dedup.clear_changes()
            names = list(self._partitions)
            stored = self._assigned(names)
            self.source.seek({name: stored.get(name) for name in names})
            return False
        return True

    def step(self, max_events: int) -> int | None:
        """One micro-batch: poll, process, hand it to the committer; the events read (None
        if the source had nothing, 0 if the batch was discarded after a refused commit)."""
        t0 = time.perf_counter()
        slices = self.source.poll(max_events)
        if not slices:
            return None
        batch = Batch()
        stats = batch.stats
        stats.timed("source", t0)
        for piece in slices:
            self._ingest(piece, batch)
        t = time.perf_counter()
        open_partitions = self.source.partitions()
        for topic, parts in batch.on_time.items():
            self._drop_duplicates(topic, parts, batch, open_partitions)
        watermarks = {}
        for topic in Topic:
            wm = self._watermarks.watermark(topic.value, open_partitions)
            watermarks[topic.value] = wm
            if wm is not None:
                self._dedup.prune(topic.value, wm)
        stats.watermarks = watermarks
        t = stats.timed("event time + dedup", t)
        partials = self._aggregator.aggregate(batch.fresh)
        t = stats.timed("aggregate", t)
        # every topic's events, whatever the sinks' wants_events: the aggregates hold them already
        results = SinkBatch(partials, batch.fresh, batch.dead_table(), watermarks)
        if not self._settle():  # the sinks plan on the batch before being committed
            return 0
        t = stats.timed("commit wait", t)
        marks = {s.key: mark for s in self.sinks if (mark := s.begin(results)) is not None}
        seen, seen_pruned = self._dedup.changes()
        self._dedup.clear_changes()
        stats.seconds = time.perf_counter() - t0
        commit = Commit(
            batch=results,
            partitions=dict(self._partitions),
            expected={name: self._expected.get(name) for name in self._partitions},
            seen=seen,
            seen_pruned=seen_pruned,
            stats=stats,
            marks=marks,
        )
        self._expected = {name: part.position for name, part in self._partitions.items()}
        self._committer.submit(commit)
        return stats.events_in

    # ------------------------------------------------------------------ one slice

    def _ingest(self, piece: Slice, batch: Batch) -> None:
        stats = batch.stats
        stats.events_in += len(piece.offsets)
        t = time.perf_counter()
        verdicts = judge(
            piece,
            self._watermarks,
            self.settings.lateness_ms,
            self.settings.max_future_ms,
            int(time.time() * 1000),
            self._enricher,
        )
        topic = verdicts.topic
        name = piece.topic if topic is None else topic.value
        self._advance(piece, name)
        batch.reject(name, piece.partition, verdicts.dead)
        batch.reject(name, piece.partition, verdicts.late, late=True)
        stats.timed("decode + validate", t)
        if topic is not None and verdicts.table is not None and verdicts.table.num_rows:
            batch.on_time.setdefault(topic, []).append(
                (piece.partition, verdicts.table, verdicts.horizons)
            )

    def _drop_duplicates(
        self,
        topic: Topic,
        parts: list[tuple[str, pa.Table, np.ndarray]],
        batch: Batch,
        open_partitions: Mapping[str, str] | None,
    ) -> None:
        """The batch's on-time events of ``topic`` (slices in reading order) minus duplicates."""
        names, tables, marks = zip(*parts, strict=True)
        table = pa.concat_tables(tables)
        sizes = [t.num_rows for t in tables]
        partition = pa.array(names, pa.string()).take(np.repeat(np.arange(len(sizes)), sizes))
        keep_from = self._watermarks.watermark(topic.value, open_partitions)
        keep = self._dedup.fresh_mask(
            topic.value,
            partition,
            table,
            np.concatenate(marks),
            NO_TS if keep_from is None else keep_from,
        )
        batch.stats.duplicates += int((~keep).sum())
        if not keep.all():
            table = table.filter(pa.array(keep))
        batch.stats.accepted += table.num_rows
        batch.fresh[topic] = table

    def _advance(self, piece: Slice, topic: str) -> None:
        """Record where the partition now stands (position and largest event time)."""
        self._partitions[piece.partition] = PartitionState(
            topic, piece.next_position, self._watermarks.max_ts.get(piece.partition, NO_TS)
        )

    def close(self) -> None:
        """Release the committer, the source and the sinks (after a clean run, the sinks'
        final marks are saved so a restart repeats nothing)."""
        self._committer.close()
        try:
            settle_sinks(self.store, self.sinks, self.source)
        finally:
            self._aggregator.close()
