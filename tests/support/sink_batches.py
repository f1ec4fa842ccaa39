"""The same micro-batches for every sink, the engine's commit protocol around them, and what a
sink must hold at the end.

:func:`make_batches` cuts one simulated hour into batches the way the engine hands them to
sinks (partials from the real analytics, the valid events per topic, a few dead letters read
from Kafka partitions, the listen watermark). :class:`Driver` plays the engine's side of the
contract against a real primary store: ``begin`` -> the store's commit (positions, marks) ->
``write``, and the crashes a sink must survive: after the commit and the write, after the
commit but before the write, before the commit, and a stale replay the store refuses.
:func:`expected` is what the batches add up to, computed in one pass over all their events.

Next: ``tests/sinks/test_suite.py`` (the suite over every sink).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from backbeat.analytics.compute import BatchAggregator
from backbeat.analytics.metrics import METRICS
from backbeat.errors import FencedError
from backbeat.events.schema import Topic
from backbeat.simulate.simulator import Simulator, SimulatorSettings
from backbeat.sinks.base import (
    DEAD_LETTER_SCHEMA,
    SEEN_SCHEMA,
    BatchStats,
    Commit,
    PartitionState,
    ResultSink,
    SinkBatch,
    Store,
)

START = datetime(2026, 4, 6, 9, tzinfo=UTC)
LATENESS_MS = 120_000
PARTITION = "kafka:listen_events:0"
"""Every batch's position lives on this partition."""


@dataclass(frozen=True)
class Fed:
    """One batch as fed to the sinks, and the position it moves the partition to."""

    batch: SinkBatch
    position: int


def make_batches(count: int = 8, topic_prefix: str = "") -> list[Fed]:
    """``count`` batches of one simulated hour (200 users), each with three dead letters read
    from Kafka partitions of topics named with ``topic_prefix``."""
    sim = Simulator(
        SimulatorSettings(users=200, seed=17, start=START, end=START + timedelta(hours=1))
    )
    steps = list(sim.batches(step_ms=3_600_000 // count))
    aggregator = BatchAggregator()
    fed: list[Fed] = []
    max_ts = 0
    try:
        for i, step in enumerate(steps[:count]):
            events = {t: table for t, table in step.tables.items() if table.num_rows}
            listens = events.get(Topic.LISTEN)
            if listens is not None and listens.num_rows:
                max_ts = max(max_ts, pc.max(listens.column("ts")).as_py())
            dead = pa.table(
                {
                    "topic": ["listen_events", "listen_events", "page_view_events"],
                    "partition": [
                        f"kafka:{topic_prefix}listen_events:0",
                        f"kafka:{topic_prefix}listen_events:2",
                        f"kafka:{topic_prefix}page_view_events:1",
                    ],
                    "offset": [i * 10, i * 10 + 1, i * 10 + 2],
                    "reason": ["not_json: bad", "missing_field: ts", "wrong_type: userId"],
                    "raw": [b"{oops %d" % i, b'{"x": %d}' % i, b'{"userId": "u%d"}' % i],
                },
                schema=DEAD_LETTER_SCHEMA,
            )
            watermarks: dict[str, int | None] = dict.fromkeys((t.value for t in Topic), None)
            watermarks[Topic.LISTEN.value] = max_ts - LATENESS_MS if max_ts else None
            batch = SinkBatch(aggregator.aggregate(events), events, dead, watermarks)
            fed.append(Fed(batch, position=(i + 1) * 1_000))
    finally:
        aggregator.close()
    return fed


def expected(fed: list[Fed]) -> dict[str, list[dict[str, Any]]]:
    """Every metric's final rows over all the batches, sorted by key (one aggregation)."""
    everything = {
        topic: pa.concat_tables([f.batch.events[topic] for f in fed if topic in f.batch.events])
        for topic in Topic
        if any(topic in f.batch.events for f in fed)
    }
    aggregator = BatchAggregator()
    try:
        partials = aggregator.aggregate(everything)
    finally:
        aggregator.close()
    out = {}
    for metric in METRICS:
        keys = [(name, "ascending") for name in metric.key_names]
        out[metric.name] = partials[metric.name].sort_by(keys).to_pylist()
    return out


@dataclass
class Driver:
    """The engine's side of the sink contract, against a real primary store."""

    store: Store
    build: Callable[[], ResultSink] | None
    """None: the primary store alone is under test."""
    sink: ResultSink | None = field(init=False, default=None)
    position: int | None = None
    crashed: list[str] = field(default_factory=list)

    def start(self) -> None:
        """(Re)start: a new sink instance resumes from the store's last batch and mark."""
        if self.sink is not None:
            self.sink.close()  # a killed process's clients die with it; nothing is settled
        state = self.store.load_state()
        part = state.partitions.get(PARTITION)
        self.position = None if part is None else part.position
        self.sink = None if self.build is None else self.build()
        if self.sink is not None:
            self.sink.resume(state.batch_id, state.marks.get(self.sink.key), self.store.reader())

    def _commit(self, fed: Fed, marks: dict[str, Any], expected: int | None) -> int:
        return self.store.commit(
            Commit(
                batch=fed.batch,
                partitions={PARTITION: PartitionState("listen_events", fed.position, 0)},
                expected={PARTITION: expected},
                seen=SEEN_SCHEMA.empty_table(),
                stats=BatchStats(events_in=sum(t.num_rows for t in fed.batch.events.values())),
                marks=marks,
            )
        )

    def feed(self, fed: Fed, crash: str | None = None) -> None:
        """One batch; ``crash``: ``after-write``, ``before-write`` or ``before-commit``."""
        mark = None if self.sink is None else self.sink.begin(fed.batch)
        marks = {} if mark is None or self.sink is None else {self.sink.key: mark}
        if crash == "before-commit":
            self.crashed.append(crash)
            self.start()
            self.feed(fed)  # the engine reads the same records again
            return
        stale = self.position
        batch_id = self._commit(fed, marks, stale)
        self.position = fed.position
        if crash != "before-write" and self.sink is not None:
            b = fed.batch
            self.sink.write(batch_id, b.partials, b.events, b.dead_letters)
        if crash is not None:
            self.crashed.append(crash)
            self.start()  # killed: no settle, no close

    def replay_refused(self, fed: Fed, stale: int | None) -> bool:
        """A process that lost the partition commits from a stale position: refused whole."""
        try:
            self._commit(fed, {}, stale)
        except FencedError:
            return True
        return False

    def stop(self) -> None:
        """A clean stop: the sink's last mark saved, the sink closed."""
        if self.sink is None:
            return
        mark = self.sink.settle()
        if mark is not None:
            self.store.save_marks({self.sink.key: mark})
        self.sink.close()
