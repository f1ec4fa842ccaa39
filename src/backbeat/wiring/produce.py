"""Simulated runs into Kafka: ``backbeat produce`` and the demo through a broker.

Next: ``simulation.py`` (the live clock), ``backbeat.transport.kafka.producer`` (the producer).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
from rich.console import Console

from backbeat.events.schema import Topic
from backbeat.simulate.pacing import coalesced, paced
from backbeat.simulate.simulator import SimBatch, Simulator, SimulatorSettings
from backbeat.transport.kafka.settings import KafkaSettings
from backbeat.transport.prefetch import read_ahead
from backbeat.ui.progress import StatusLine
from backbeat.wiring.simulation import at_speed, live_settings, live_step_ms

if TYPE_CHECKING:
    from backbeat.transport.kafka.producer import DeliveryReport
    from backbeat.transport.kafka.source import KafkaSource

PRODUCE_CHUNK_EVENTS = 50_000
PACED_CHUNK_S = 0.2  # with --rate, a chunk holds about this much time of events


def produce_to_kafka(
    settings: SimulatorSettings,
    kafka: KafkaSettings,
    topics: set[Topic] | None = None,
    rate: float | None = None,
    total: int | None = None,
    progress: bool = True,
    speed: float | None = None,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """Simulate and produce to Kafka until the run ends, ``total`` events were queued or
    ``stop`` is set; flushes on the way out (Ctrl-C included) and returns what the broker
    acknowledged. ``rate`` caps events/s; ``speed`` releases event time at that many times
    the wall clock (the live demo). The topics it writes are created first when missing
    (idempotent), so a topic that gets no event yet still exists for ``stream``.

    Simulated minutes are merged into chunks of ``PRODUCE_CHUNK_EVENTS`` (with ``rate``,
    ``PACED_CHUNK_S`` worth of events) before they are encoded, so the fixed cost of encoding
    a chunk is spread over many events; a read-ahead thread simulates and encodes the next
    chunk while this one is queued.

    Raises:
        SourceError: the cluster cannot be reached or refused a topic.
        TransientError: records were still undelivered after the final flush.
    """
    from backbeat.transport.kafka.admin import create_topics

    create_topics(kafka, [kafka.topic(t.value) for t in Topic if topics is None or t in topics])
    chunks = produce_chunks(settings, topics, rate, total, speed)
    return produce_batches(chunks, kafka, topics, total=total, progress=progress, stop=stop)


def produce_batches(
    chunks: Iterable[SimBatch],
    kafka: KafkaSettings,
    topics: set[Topic] | None = None,
    total: int | None = None,
    progress: bool = True,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """Encode and produce simulated chunks (see :func:`produce_to_kafka`); ``total`` is for
    the progress bar only.

    Raises:
        TransientError: records were still undelivered after the final flush.
    """
    from backbeat.transport.kafka.producer import EventProducer

    producer = EventProducer(kafka, topics)
    report = producer.report
    started = time.monotonic()

    def show(status: StatusLine) -> None:
        rate_now = report.delivered / max(time.monotonic() - started, 1e-9)
        away = producer.watch.unreachable_s
        status.advance(
            report.produced,
            f"{report.delivered:,} delivered · {rate_now:,.0f} events/s · "
            f"{report.failed:,} delivery errors"
            + (f" · broker unreachable for {away:.0f}s" if away is not None else ""),
        )

    line = StatusLine(Console(stderr=True), progress, total=total, description="producing")
    with line as status:
        try:
            ahead = read_ahead(producer.encode(chunk.tables) for chunk in chunks)
            with closing(ahead):  # joins the read-ahead thread however the loop ends
                for records in ahead:
                    if stop is not None and stop.is_set():
                        break
                    producer.queue(records)
                    show(status)
        finally:
            producer.close()  # the flush, under the status line: its last frame has it all
        show(status)
    return report


def produce_chunks(
    settings: SimulatorSettings,
    topics: set[Topic] | None = None,
    rate: float | None = None,
    total: int | None = None,
    speed: float | None = None,
) -> Iterator[SimBatch]:
    """The simulated run as ``produce_to_kafka`` queues it: only ``topics``, cut after
    ``total`` events (the earliest by ``ts``), in chunks paced to ``rate``; with ``speed``,
    short steps released as the scaled wall clock reaches them (the live demo, unchunked)."""
    step_ms = 60_000 if speed is None else live_step_ms(speed)
    steps: Iterator[SimBatch] = Simulator(settings).batches(step_ms=step_ms)
    if speed is not None:
        steps = at_speed(steps, speed)
    if topics is not None:
        steps = (
            replace(s, tables={t: s.tables[t] for t in s.tables if t in topics}) for s in steps
        )
    if total is not None:
        steps = _capped(steps, total)
    if speed is not None:
        return steps if rate is None else paced(steps, rate)
    if rate is None:
        return coalesced(steps, PRODUCE_CHUNK_EVENTS)
    size = min(PRODUCE_CHUNK_EVENTS, int(rate * PACED_CHUNK_S) + 1)
    return paced(coalesced(steps, size), rate)


def _capped(steps: Iterator[SimBatch], total: int) -> Iterator[SimBatch]:
    """``steps`` until ``total`` events, the last one cut to fit."""
    left = total
    for step in steps:
        if step.n_events >= left:
            yield replace(step, tables=_first(step.tables, left))
            return
        left -= step.n_events
        yield step


def _first(tables: dict[Topic, pa.Table], n: int) -> dict[Topic, pa.Table]:
    """The ``n`` earliest events of one step (by ts, across topics)."""
    merged = sorted(
        ((ts, topic, i) for topic, t in tables.items() for i, ts in enumerate(t["ts"].to_pylist())),
        key=lambda x: x[0],
    )[:n]
    keep: dict[Topic, list[int]] = {topic: [] for topic in tables}
    for _, topic, i in merged:
        keep[topic].append(i)
    return {
        topic: tables[topic].take(pa.array(sorted(idx), pa.int64())) for topic, idx in keep.items()
    }


class KafkaDemo:
    """``backbeat demo`` through a broker: the simulator produces at ``speed`` in a thread
    while the engine reads the topics with :attr:`source` (the run adds the ``kafka-dlq``
    sink, as ``stream`` does).

    The source starts every partition at the first record stamped at or after the moment
    the demo was built, so records of earlier demos on the same topics are not counted again
    (the demo's store starts empty). Each event is then counted once: the engine commits
    Kafka offsets with its results, and the producer is idempotent.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        users: int,
        seed: int,
        speed: float,
        catalog: Path | None = None,
        incidents: tuple[str, ...] = (),
    ) -> None:
        """Creates the topics when missing (idempotent).

        Raises:
            ConfigError: an incident (``--incident`` value) is invalid.
            SourceError: the cluster cannot be reached or refused a topic, or the catalog
                file cannot be loaded.
        """
        from backbeat.transport.kafka.admin import backbeat_topics, create_topics
        from backbeat.transport.kafka.source import KafkaSource

        settings = live_settings(  # a bad file or incident: fail now
            users=users, seed=seed, catalog=catalog, incidents=incidents
        )

        create_topics(kafka, backbeat_topics(kafka))
        self.source: KafkaSource = KafkaSource(
            kafka, backbeat_topics(kafka, dlq=False), start=datetime.now(UTC)
        )
        self._stop = threading.Event()
        self._report: DeliveryReport | None = None
        self._error: Exception | None = None
        self._thread = threading.Thread(
            target=self._produce,
            args=(settings, kafka, speed),
            name="backbeat-demo-producer",
            daemon=True,
        )
        self._on_error: Callable[[], None] = lambda: None

    def start(self, on_error: Callable[[], None]) -> None:
        """Start producing; ``on_error`` is called from the producer thread if it fails."""
        self._on_error = on_error
        self._thread.start()

    def _produce(self, settings: SimulatorSettings, kafka: KafkaSettings, speed: float) -> None:
        try:
            self._report = produce_to_kafka(
                settings, kafka, progress=False, speed=speed, stop=self._stop
            )
        except Exception as exc:  # handed to the main thread by stop()
            self._error = exc
            self._on_error()

    def stop(self) -> DeliveryReport | None:
        """Stop producing after the step in flight and wait for the flush; returns what the
        broker acknowledged (None if producing never started).

        Raises:
            BackbeatError: producing failed (e.g. records were not delivered).
        """
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self._report
