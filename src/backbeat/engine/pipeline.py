"""The embedded engine: a micro-batch loop with exactly-once commits.

One step: poll slices from the source -> decode and validate (bad records become dead
letters) -> mark late events per partition -> drop duplicates -> aggregate the fresh events
into partials (``backbeat.analytics``) -> commit partials, dead letters, positions,
watermarks, de-dup keys and the CSV mark in ONE store transaction -> append the CSV. On
start the engine reads that state back, repairs the CSV and tells the source where to resume,
so a kill -9 at any moment loses nothing and doubles nothing.

When the source's partitions come and go (a Kafka consumer group, several engine processes
sharing one store), the engine holds state only for the partitions it owns: it loads a
partition's position, watermark and de-dup keys from the store when it is given one, drops
them when it loses one, and every commit is fenced by the positions it started from. Each
batch is committed before the next poll, so a revocation (served inside the poll) never
finds a batch in flight; a commit refused because another process moved a partition is
discarded and the engine resumes from the store.

Next: ``eventtime.py``, ``dedup.py``, ``backbeat.sinks.duckdb_store``.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

import numpy as np
import pyarrow as pa

from backbeat.analytics.compute import BatchAggregator
from backbeat.engine.dedup import Deduplicator
from backbeat.engine.eventtime import NO_TS, Watermarks
from backbeat.errors import ConfigError, FencedError
from backbeat.events.codec import DeadLetter, decode_batch, validate_table
from backbeat.events.schema import Topic, parse_topic
from backbeat.sinks.base import (
    DEAD_LETTER_SCHEMA,
    BatchStats,
    Commit,
    EngineState,
    PartitionState,
    Store,
)
from backbeat.sinks.csv_sink import CsvSink
from backbeat.transport.base import ArrowSlice, RawSlice, Slice, Source

log = logging.getLogger(__name__)


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
    """

    lateness_ms: int = 120_000
    max_batch_events: int = 500_000
    idle_sleep_s: float = 0.05
    max_future_ms: int | None = 86_400_000


@dataclass(slots=True)
class RunReport(BatchStats):
    """What a run did: the sum of its batches' counts and phases, and why it stopped."""

    batches: int = 0
    stopped_by: str = ""
    last: BatchStats = field(default_factory=BatchStats)

    def add(self, stats: BatchStats) -> None:
        self.batches += 1
        self.events_in += stats.events_in
        self.accepted += stats.accepted
        self.duplicates += stats.duplicates
        self.late += stats.late
        self.dead += stats.dead
        for phase, seconds in stats.phases.items():
            self.phases[phase] = self.phases.get(phase, 0.0) + seconds
        self.last = stats


class _Batch:
    """Accumulates one micro-batch's fresh events, dead letters and counts."""

    def __init__(self) -> None:
        self.on_time: dict[Topic, list[tuple[str, pa.Table, np.ndarray]]] = {}
        self.fresh: dict[Topic, pa.Table] = {}
        self.dead: list[tuple[str, str, DeadLetter]] = []
        self.stats = BatchStats()

    def dead_table(self) -> pa.Table:
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


class Pipeline:
    """Runs the micro-batch loop from a source into a store (and optionally a CSV file)."""

    def __init__(
        self,
        source: Source,
        store: Store,
        settings: EngineSettings | None = None,
        csv: CsvSink | None = None,
        on_batch: Callable[[BatchStats, RunReport], None] | None = None,
        before_commit: Callable[[Commit], None] | None = None,
    ) -> None:
        """``before_commit`` sees each batch's :class:`Commit` just before the store applies
        it (e.g. to copy dead letters to Kafka); if it raises, the batch is not committed."""
        self.source = source
        self.store = store
        self.settings = settings or EngineSettings()
        self.csv = csv
        self.on_batch = on_batch
        self.before_commit = before_commit
        self._aggregator = BatchAggregator()
        self._stop = threading.Event()
        state = store.load_state()
        self._restore(state)

    def _restore(self, state: EngineState) -> None:
        self._batch_id = state.batch_id
        self._csv_mark = state.csv.get(str(self.csv.path)) if self.csv is not None else None
        self._watermarks = Watermarks(self.settings.lateness_ms, {}, {})
        self._dedup = Deduplicator()
        self._partitions: dict[str, PartitionState] = {}
        self._expected: dict[str, int | None] = {}
        if not self.source.listen(self._assigned, self._revoked):
            self._hold(state)  # fixed partitions: all of them, from the start
        elif self.csv is not None:
            raise ConfigError(
                "the CSV file needs one process that reads every partition: drop --csv or "
                "--group (query the store for the same windows)"
            )
        if self.csv is not None:
            self.csv.recover(self.store, self._csv_mark)
        self.source.open({p: s.position for p, s in state.partitions.items()})
        if state.batch_id:
            log.info(
                "resuming after batch %d (%d partitions)", state.batch_id, len(self._partitions)
            )

    def _hold(self, state: EngineState) -> None:
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
        """Ask the loop to finish the batch in flight, commit it and return."""
        self._stop.set()

    # ------------------------------------------------------------------ loop

    def run(self, max_events: int | None = None, timeout: float | None = None) -> RunReport:
        """Process until the source is exhausted, ``max_events`` were read, ``timeout`` seconds
        passed, or :meth:`stop` / Ctrl-C / SIGTERM was received (after committing).
        """
        report = RunReport()
        started = time.monotonic()
        with _graceful_interrupt(self.stop):
            while True:
                if self._stop.is_set():
                    report.stopped_by = "interrupted"
                    break
                if timeout is not None and time.monotonic() - started >= timeout:
                    report.stopped_by = "timeout"
                    break
                budget = self.settings.max_batch_events
                if max_events is not None:
                    if report.events_in >= max_events:
                        report.stopped_by = "max_events"
                        break
                    budget = min(budget, max_events - report.events_in)
                stats = self.step(budget)
                if stats is None:
                    if self.source.exhausted:
                        report.stopped_by = "exhausted"
                        break
                    time.sleep(self.settings.idle_sleep_s)
                    continue
                report.add(stats)
                log.info(
                    "committed batch %d: %d events in %.0f ms (%d this run)",
                    self._batch_id, stats.events_in, stats.seconds * 1000, report.events_in,
                )  # fmt: skip
                if self.on_batch is not None:
                    self.on_batch(stats, report)
        report.seconds = time.monotonic() - started
        return report

    def step(self, max_events: int) -> BatchStats | None:
        """One micro-batch: poll, process, commit. None if the source had nothing."""
        t0 = time.perf_counter()
        slices = self.source.poll(max_events)
        if not slices:
            return None
        batch = _Batch()
        stats = batch.stats
        stats.timed("source", t0)
        for piece in slices:
            self._ingest(piece, batch)
        t = time.perf_counter()
        open_partitions = self.source.partitions()
        for topic, parts in batch.on_time.items():
            self._drop_duplicates(topic, parts, batch, open_partitions)
        for topic in Topic:
            wm = self._watermarks.watermark(topic.value, open_partitions)
            if wm is not None:
                self._dedup.prune(topic.value, wm)
        t = stats.timed("event time + dedup", t)
        partials = self._aggregator.aggregate(batch.fresh)
        t = stats.timed("aggregate", t)
        csv_plan = None
        if self.csv is not None:
            csv_plan = self.csv.plan(
                self.store,
                self._csv_mark,
                self._watermarks.watermark(Topic.LISTEN.value, self.source.partitions()),
                partials["genre_minute"],
            )
        stats.seconds = time.perf_counter() - t0
        seen, seen_pruned = self._dedup.changes()
        commit = Commit(
            partials=partials,
            dead_letters=batch.dead_table(),
            partitions=dict(self._partitions),
            expected={name: self._expected.get(name) for name in self._partitions},
            seen=seen,
            seen_pruned=seen_pruned,
            stats=stats,
            csv=csv_plan[0] if csv_plan else None,
            listens=batch.fresh.get(Topic.LISTEN),
        )
        if self.before_commit is not None:
            self.before_commit(commit)
        try:
            self._batch_id = self.store.commit(commit)
        except FencedError as exc:
            log.warning("batch discarded: %s; resuming those partitions from the store", exc)
            self._dedup.clear_changes()
            names = list(self._partitions)
            stored = self._assigned(names)
            self.source.seek({name: stored.get(name) for name in names})
            return None
        self._dedup.clear_changes()
        stats.batch_id = self._batch_id
        self._expected = {name: part.position for name, part in self._partitions.items()}
        if csv_plan is not None and self.csv is not None:
            self._csv_mark = csv_plan[0]
            self.csv.write(*csv_plan)
        stats.timed("commit", t)
        stats.seconds = time.perf_counter() - t0
        return stats

    # ------------------------------------------------------------------ one slice

    def _ingest(self, piece: Slice, batch: _Batch) -> None:
        stats = batch.stats
        count = len(piece.offsets)
        stats.events_in += count
        topic = parse_topic(piece.topic)
        if topic is None:
            self._advance(piece, piece.topic)
            reason = f"unknown_topic: {piece.topic!r} is not one of backbeat's topics"
            raws = piece.payloads if isinstance(piece, RawSlice) else _raws_at(piece, piece.offsets)
            batch.dead.extend(
                (piece.topic, piece.partition, DeadLetter(bytes(r), int(o), reason))
                for r, o in zip(raws, piece.offsets.tolist(), strict=True)
            )
            stats.dead += count
            return
        t = time.perf_counter()
        if isinstance(piece, RawSlice):
            decoded = piece.decoded or decode_batch(topic, piece.payloads, piece.offsets)
            table, offsets, dead = decoded.table, decoded.offsets, decoded.dead
        else:
            table, offsets, dead = _checked(topic, piece)
        t = stats.timed("decode + validate", t)
        batch.dead.extend((topic.value, piece.partition, d) for d in dead)
        stats.dead += len(dead)

        if self.settings.max_future_ms is not None:
            table, offsets = self._drop_future(topic, piece, table, offsets, batch)
        ts = table.column("ts").to_numpy()
        marks = self._watermarks.advance(topic.value, piece.partition, ts)
        late = ts < marks
        self._advance(piece, topic.value)
        if late.any():
            late_idx = np.flatnonzero(late)
            raws = _raws_at(piece, offsets[late_idx])
            batch.dead.extend(
                (
                    topic.value,
                    piece.partition,
                    DeadLetter(
                        raw,
                        int(offsets[i]),
                        f"late: ts {int(ts[i])} is more than "
                        f"{self.settings.lateness_ms} ms behind the partition's event time",
                    ),
                )
                for i, raw in zip(late_idx.tolist(), raws, strict=True)
            )
            stats.late += len(late_idx)
            table = table.filter(pa.array(~late))
            marks = marks[~late]
        stats.timed("event time + dedup", t)
        if table.num_rows:
            batch.on_time.setdefault(topic, []).append((piece.partition, table, marks))

    def _drop_duplicates(
        self,
        topic: Topic,
        parts: list[tuple[str, pa.Table, np.ndarray]],
        batch: _Batch,
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

    def _drop_future(
        self, topic: Topic, piece: Slice, table: pa.Table, offsets: np.ndarray, batch: _Batch
    ) -> tuple[pa.Table, np.ndarray]:
        assert self.settings.max_future_ms is not None
        limit = int(time.time() * 1000) + self.settings.max_future_ms
        ts = table.column("ts").to_numpy()
        future = ts > limit
        if not future.any():
            return table, offsets
        idx = np.flatnonzero(future)
        reason = f"out_of_range: ts is more than {self.settings.max_future_ms} ms in the future"
        batch.dead.extend(
            (topic.value, piece.partition, DeadLetter(raw, int(offsets[i]), reason))
            for i, raw in zip(idx.tolist(), _raws_at(piece, offsets[idx]), strict=True)
        )
        batch.stats.dead += len(idx)
        return table.filter(pa.array(~future)), offsets[~future]

    def _advance(self, piece: Slice, topic: str) -> None:
        """Record where the partition now stands (position and largest event time)."""
        self._partitions[piece.partition] = PartitionState(
            topic, piece.next_position, self._watermarks.max_ts.get(piece.partition, NO_TS)
        )

    def close(self) -> None:
        self._aggregator.close()
        self.source.close()


def _checked(topic: Topic, piece: ArrowSlice) -> tuple[pa.Table, np.ndarray, list[DeadLetter]]:
    """Validate an in-process slice (already typed) against the contract."""
    decoded = validate_table(topic, piece.table, piece.offsets, lambda idx: _rows_json(piece, idx))
    return decoded.table, decoded.offsets, decoded.dead


def _rows_json(piece: ArrowSlice, idx: list[int]) -> list[bytes]:
    """Rows of a typed slice as JSON, for dead letters (any columns, as they came)."""
    rows = piece.table.take(pa.array(idx, pa.int64())).to_pylist()
    return [json.dumps(r, default=str, sort_keys=False).encode() for r in rows]


def _raws_at(piece: Slice, offsets: np.ndarray) -> list[bytes]:
    """Raw bytes of the messages at ``offsets`` (for dead letters)."""
    idx = np.searchsorted(piece.offsets, offsets).tolist()
    if isinstance(piece, RawSlice):
        return [bytes(piece.payloads[i]) for i in idx]
    return _rows_json(piece, idx)


@contextmanager
def _graceful_interrupt(stop: Callable[[], None]) -> Iterator[None]:
    """Turn Ctrl-C / SIGTERM into 'finish and commit the current batch, then stop'."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        log.warning("signal %d: finishing the current batch, then stopping", signum)
        stop()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
