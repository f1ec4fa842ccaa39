"""The Spark engine: Structured Streaming micro-batches, the same analytics, exactly once.

A streaming query reads the source with backbeat's Python data sources (``sources.py``);
``foreachBatch`` runs each micro-batch as the embedded engine does, with the per-event work on
the executors:

1. the executors judge each partition's records (``prepare.py``: decode, validate, future,
   late: the embedded engine's own :func:`~backbeat.engine.verdicts.judge`) and keep the
   events;
2. the driver gets the partitions' marks, the dead letters and each event's de-dup key, runs
   the embedded engine's :class:`~backbeat.engine.dedup.Deduplicator` over the keys, and sends
   back the (usually few) duplicates, which the executors drop;
3. the executors run every metric's SQL (``backbeat.analytics.metrics``, unchanged) over the
   fresh events; the partials come to the driver;
4. the driver commits partials, dead letters, positions, watermarks, de-dup keys and the
   fresh events the store and the sinks want (listens, and the other topics only when a
   sink's ``wants_events`` names them, as the lake's does), in one store transaction, with
   Spark's batch id among the marks: a batch Spark replays after a crash (its checkpoint a
   batch behind the store) is skipped.

The store's positions are the truth: the query starts there, so a lost checkpoint costs
nothing. Ctrl-C stops after the batch in flight is committed.

Next: ``prepare.py``, ``sources.py``, ``session.py``; ``docs/spark.md``.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from backbeat.analytics.metrics import METRICS, VIEWS
from backbeat.engine.base import Engine, EngineSettings, OnBatch, OnError, RunReport
from backbeat.engine.batch import count_reasons
from backbeat.engine.commit import Committer
from backbeat.engine.dedup import Deduplicator
from backbeat.engine.eventtime import NO_TS, Watermarks
from backbeat.engine.lifecycle import graceful_interrupt, report_commit, resume_sinks, settle_sinks
from backbeat.engine.spark.plan import SourcePlan
from backbeat.engine.spark.prepare import META, WIDE, preparer
from backbeat.engine.spark.session import session
from backbeat.errors import ConfigError
from backbeat.events.schema import Topic, arrow_schema
from backbeat.sinks.base import (
    DEAD_LETTER_SCHEMA,
    BatchStats,
    Commit,
    PartitionState,
    ResultSink,
    SinkBatch,
    Store,
    wanted_topics,
)
from backbeat.transport.base import Source

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

MARK_KEY: Final = "engine:spark"
_SPARK_TYPES: Final = {
    pa.string(): "STRING", pa.int64(): "BIGINT", pa.int32(): "INT", pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN", pa.binary(): "BINARY",
}  # fmt: skip
_KEYS: Final = ("_topic", "_partition", "_offset", "_horizon", "ts", "eventId", "sessionId",
                "itemInSession")  # fmt: skip


def ddl(schema: pa.Schema) -> str:
    """An Arrow schema as Spark DDL."""
    return ", ".join(f"`{f.name}` {_SPARK_TYPES[f.type]}" for f in schema)


class SparkEngine(Engine):
    """Runs a source through Spark Structured Streaming into the store and result sinks."""

    def __init__(
        self,
        source: Source,
        store: Store,
        sinks: Sequence[ResultSink] = (),
        settings: EngineSettings | None = None,
        on_batch: OnBatch | None = None,
        on_error: OnError | None = None,
    ) -> None:
        """Engine options (``settings.options``): ``master``, ``checkpoint``, ``trigger``
        (``available-now`` or an interval such as ``10s``), ``max_rows`` (per batch) and
        ``conf.<key>`` for Spark settings.

        Raises:
            ConfigError: the source cannot be read by Spark, PySpark or Java is missing.
        """
        self.settings = settings or EngineSettings()
        if self.settings.catalog is not None:
            raise ConfigError("--catalog is not supported by the Spark engine yet: drop it")
        self._plan = SourcePlan(source.spec())
        self.source, self.store, self.sinks, self.on_batch = source, store, list(sinks), on_batch
        options = dict(self.settings.options)
        conf = {k.removeprefix("conf."): v for k, v in options.items() if k.startswith("conf.")}
        self._spark = session(options.get("master"), conf)
        self._checkpoint = options.get("checkpoint") or tempfile.mkdtemp(prefix="backbeat-spark-")
        self._trigger = options.get("trigger", "0 seconds")
        self._max_rows = int(options.get("max_rows", self.settings.max_batch_events))
        self._stop = threading.Event()
        self._busy = threading.Lock()
        self._report = RunReport()
        self._committer = Committer(store, self.sinks, self._committed, False, on_error)
        self._topics = wanted_topics(self.sinks)  # the events worth collecting to the driver
        state = store.load_state()
        self._partitions: dict[str, PartitionState] = dict(state.partitions)
        self._expected: dict[str, int | None] = {n: p.position for n, p in state.partitions.items()}
        self._watermarks = Watermarks(self.settings.lateness_ms, {}, {})
        for name, part in state.partitions.items():
            self._watermarks.restore(name, part.topic, part.max_ts)
        self._dedup = Deduplicator(state.seen)
        self._done = state.marks.get(MARK_KEY) or {}
        resume_sinks(store, self.sinks, state)
        self._query: Any = None
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ the query

    def run(self, max_events: int | None = None, timeout: float | None = None) -> RunReport:
        self._report = report = RunReport()
        started = time.monotonic()
        frame = self._plan.frame(self._spark, self._partitions, self._max_rows)
        writer = frame.writeStream.foreachBatch(self._batch)
        writer = writer.option("checkpointLocation", self._checkpoint)
        if self._trigger == "available-now":
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=self._trigger)
        self._query = writer.start()
        with graceful_interrupt(self.stop):
            try:
                while self._error is None:
                    if self._stop.is_set():
                        report.stopped_by = "interrupted"
                        break
                    if timeout is not None and time.monotonic() - started >= timeout:
                        report.stopped_by = "timeout"
                        break
                    if max_events is not None and report.events_in >= max_events:
                        report.stopped_by = "max_events"
                        break
                    if self._plan.at_end(self._partitions) or not self._query.isActive:
                        report.stopped_by = "exhausted"
                        break
                    self._query.awaitTermination(0.2)
            finally:
                with self._busy:  # never stop the query inside a commit
                    self._query.stop()
        if self._error is not None:
            raise self._error
        report.seconds = time.monotonic() - started
        return report

    def stop(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------ one batch

    def _batch(self, frame: DataFrame, spark_batch: int) -> None:
        with self._busy:
            try:
                self._commit_batch(frame, spark_batch)
            except BaseException as exc:  # surfaced by run(); Spark would only log it
                self._error = exc
                raise

    def _commit_batch(self, frame: DataFrame, spark_batch: int) -> None:
        query_id = str(self._query.id) if self._query is not None else ""
        if self._done.get("query") == query_id and spark_batch <= int(self._done["batch"]):
            log.info("Spark batch %d is committed already: skipped", spark_batch)
            return
        t0 = time.perf_counter()
        stats = BatchStats()
        prepare = preparer(
            {n: p.max_ts for n, p in self._partitions.items()},
            self.settings.lateness_ms,
            self.settings.max_future_ms,
            int(time.time() * 1000),
        )
        prepared = frame.mapInArrow(prepare, ddl(WIDE)).persist()
        try:
            small = prepared.filter("_kind <> 'event'").select(*META.names).toArrow()
            keys = prepared.filter("_kind = 'event'").select(*_KEYS).toArrow()
            t = stats.timed("decode + validate", t0)
            dead = self._marks_and_letters(small, stats)
            open_now = self._plan.open_partitions(self._partitions)
            fresh, duplicates = self._fresh(prepared, keys, open_now)
            stats.events_in = stats.dead + stats.late + keys.num_rows
            stats.duplicates, stats.accepted = duplicates, keys.num_rows - duplicates
            t = stats.timed("event time + dedup", t)
            views = {topic: _topic_rows(fresh, topic).persist() for topic in VIEWS}
            try:  # each topic's fresh events computed once, read by its metrics
                partials = _aggregate(views)
                events = _collect(views, self._topics)
            finally:
                for view in views.values():
                    view.unpersist()
            t = stats.timed("aggregate", t)
        finally:
            prepared.unpersist()
        watermarks: dict[str, int | None] = {}
        for topic in Topic:
            wm = self._watermarks.watermark(topic.value, open_now)
            watermarks[topic.value] = wm
            if wm is not None:
                self._dedup.prune(topic.value, wm)
        stats.watermarks = watermarks
        results = SinkBatch(partials, events, dead, watermarks)
        marks = {s.key: mark for s in self.sinks if (mark := s.begin(results)) is not None}
        marks[MARK_KEY] = {"query": query_id, "batch": spark_batch}
        seen, seen_pruned = self._dedup.changes()
        self._dedup.clear_changes()
        stats.seconds = time.perf_counter() - t0
        self._committer.submit(
            Commit(
                batch=results,
                partitions=dict(self._partitions),
                expected=dict(self._expected),
                seen=seen,
                seen_pruned=seen_pruned,
                stats=stats,
                marks=marks,
            )
        )
        self._expected = {n: p.position for n, p in self._partitions.items()}
        self._done = marks[MARK_KEY]

    def _marks_and_letters(self, small: pa.Table, stats: BatchStats) -> pa.Table:
        """Apply the partitions' marks; the batch's dead letters (``DEAD_LETTER_SCHEMA``)."""
        kind = small.column("_kind")
        for row in small.filter(pc.equal(kind, "mark")).to_pylist():
            name, max_ts = row["_partition"], int(row["_max_ts"])
            self._partitions[name] = PartitionState(row["_topic"], int(row["_position"]), max_ts)
            if max_ts != NO_TS:
                self._watermarks.restore(name, row["_topic"], max_ts)
            self._watermarks.advance(row["_topic"], name, np.zeros(0, dtype=np.int64))
        letters = small.filter(pc.invert(pc.equal(kind, "mark")))
        late = pc.equal(letters.column("_kind"), "late")
        stats.late = int(pc.sum(pc.cast(late, pa.int64())).as_py() or 0)
        stats.dead = letters.num_rows - stats.late
        count_reasons(letters.column("_reason").to_pylist(), stats.dead_reasons)
        order = letters.sort_by([("_partition", "ascending"), ("_offset", "ascending")])
        return pa.table(
            [order.column(c) for c in ("_topic", "_partition", "_offset", "_reason", "_raw")],
            schema=DEAD_LETTER_SCHEMA,
        )

    def _fresh(
        self, prepared: DataFrame, keys: pa.Table, open_now: Mapping[str, str]
    ) -> tuple[DataFrame, int]:
        """The batch's events minus duplicates (judged on the driver over their keys);
        ``open_now``: the partitions that may still deliver."""
        events = prepared.filter("_kind = 'event'")
        keys = keys.sort_by([("_partition", "ascending"), ("_offset", "ascending")])
        repeats: list[pa.Table] = []
        for topic in pc.unique(keys.column("_topic")).to_pylist():
            mine = keys.filter(pc.equal(keys.column("_topic"), topic))
            keep_from = self._watermarks.watermark(topic, open_now)
            keep = self._dedup.fresh_mask(
                topic,
                mine.column("_partition").combine_chunks(),
                mine,
                mine.column("_horizon").to_numpy(),
                NO_TS if keep_from is None else keep_from,
            )
            if not keep.all():
                repeats.append(mine.filter(pa.array(~keep)).select(["_partition", "_offset"]))
        if not repeats:
            return events, 0
        drop = pa.concat_tables(repeats)
        dropped = prepared.sparkSession.createDataFrame(drop)
        return events.join(dropped.hint("broadcast"), ["_partition", "_offset"], "left_anti"), (
            drop.num_rows
        )

    @property
    def ui_url(self) -> str | None:
        """The Spark UI of this application's driver (None when the UI is off)."""
        url: str | None = self._spark.sparkContext.uiWebUrl
        return url

    def _committed(self, stats: BatchStats) -> None:
        report_commit(self._report, stats, self.on_batch)

    def close(self) -> None:
        self._committer.close()
        settle_sinks(self.store, self.sinks, self.source)


def _aggregate(views: dict[Topic, DataFrame]) -> dict[str, pa.Table]:
    """Every metric's SQL over the topics' fresh events, on the executors."""
    for topic, frame in views.items():
        frame.createOrReplaceTempView(VIEWS[topic])
    spark = next(iter(views.values())).sparkSession  # the batch's: its temp views are its own
    return {m.name: spark.sql(m.sql).toArrow() for m in METRICS}


def _collect(views: Mapping[Topic, DataFrame], topics: frozenset[Topic]) -> dict[Topic, pa.Table]:
    """The fresh events of ``topics`` on the driver, cast to the contract; topics without
    events are absent."""
    tables = {t: views[t].toArrow() for t in Topic if t in topics}
    return {t: table.cast(arrow_schema(t)) for t, table in tables.items() if table.num_rows}


def _topic_rows(fresh: DataFrame, topic: Topic) -> DataFrame:
    """The fresh events of ``topic`` with its contract columns."""
    return fresh.filter(fresh["_topic"] == topic.value).select(
        *[f.name for f in arrow_schema(topic)]
    )
