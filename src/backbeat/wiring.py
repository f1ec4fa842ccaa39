"""Composition root: builds simulators, sources and runs from CLI-level choices.

Commands stay thin by calling one function here; library modules never import this file.

Next: ``cli.py`` (the caller), ``backbeat.simulate`` and ``backbeat.transport`` (what is built).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
from rich.console import Console

from backbeat.events.schema import Topic
from backbeat.simulate.config import EventsimConfig, default_config, load_config
from backbeat.simulate.pacing import coalesced, paced
from backbeat.simulate.simulator import SimBatch, Simulator, SimulatorSettings
from backbeat.simulate.writer import write_run
from backbeat.transport.inprocess import SimulatorSource
from backbeat.transport.kafka.settings import KafkaSettings
from backbeat.transport.prefetch import read_ahead
from backbeat.ui.progress import StatusLine

if TYPE_CHECKING:
    from backbeat.sinks.base import Commit
    from backbeat.transport.kafka.dead_letters import DeadLetterProducer
    from backbeat.transport.kafka.producer import DeliveryReport
    from backbeat.transport.kafka.source import KafkaSource

LIVE_STEP_S = 0.25
FILE_STEP_MS = 600_000
PRODUCE_CHUNK_EVENTS = 50_000
PACED_CHUNK_S = 0.2  # with --rate, a chunk holds about this much time of events


def simulator_settings(
    *,
    users: int,
    seed: int | None,
    start: datetime | None,
    end: datetime | None,
    config: Path | None,
    default_span: timedelta,
) -> SimulatorSettings:
    """Settings from flags: flags override the config file, which overrides defaults."""
    cfg: EventsimConfig = load_config(config) if config is not None else default_config()
    begin = (
        start
        or cfg.start_date
        or (datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1))
    )
    finish = end or cfg.end_date or begin + default_span
    return SimulatorSettings(
        users=users,
        seed=cfg.seed if seed is None else seed,
        start=begin,
        end=finish,
        config=cfg,
    )


def write_jsonl_run(
    settings: SimulatorSettings, out: Path, rate: float | None = None, progress: bool = True
) -> dict[str, int]:
    """Simulate and write ``<topic>.jsonl`` files into ``out``; returns events per topic."""
    batches: Iterator[SimBatch] = Simulator(settings).batches(step_ms=FILE_STEP_MS)
    if rate is not None:
        batches = paced(batches, rate)
    status_line = StatusLine(Console(stderr=True), progress, total=100, description="simulating")
    with status_line as status:
        counts = write_run(_reporting(batches, settings, status), out)
    return {topic.value: n for topic, n in counts.items()}


def _reporting(
    batches: Iterator[SimBatch], settings: SimulatorSettings, status: StatusLine
) -> Iterator[SimBatch]:
    """Pass batches through, showing % of event time done and events/s."""
    start_ms = settings.start.timestamp() * 1000
    span = (settings.end.timestamp() * 1000 - start_ms) if settings.end else None
    started, total = time.monotonic(), 0
    for step in batches:
        total += step.n_events
        done = (step.end_ms - start_ms) / span * 100 if span else 0
        rate = total / max(time.monotonic() - started, 1e-9)
        status.advance(int(min(done, 100)), f"{total:,} events · {rate:,.0f}/s")
        yield step


def live_settings(*, users: int, seed: int) -> SimulatorSettings:
    """A continuous run of the built-in site starting now (the demo's)."""
    now = datetime.now(UTC).replace(microsecond=0)
    return SimulatorSettings(users=users, seed=seed, start=now, end=None, config=default_config())


def _live_step_ms(speed: float) -> int:
    """Event time per step: 250 ms of wall time at ``speed``."""
    return max(1, int(LIVE_STEP_S * speed * 1000))


def live_source(
    *, users: int, seed: int, speed: float, tap: Callable[[SimBatch], SimBatch] | None = None
) -> SimulatorSource:
    """A continuous simulator whose event time runs ``speed`` times faster than the wall clock,
    starting now, handed out in steps of 250 ms of wall time: one step per poll, or every step
    already due when the engine fell behind (so a slow batch is followed by a bigger one, not
    by a growing backlog). ``tap`` sees each step as it is released and may add events to it
    (``benchmarks/bench_web.py`` stamps probe events)."""
    sim = _WallClockSimulator(Simulator(live_settings(users=users, seed=seed)), speed, tap)
    return SimulatorSource(
        sim,  # type: ignore[arg-type]
        step_ms=_live_step_ms(speed),
        steps_per_poll=1,
        catch_up=sim.behind,
    )


class _SpeedClock:
    """Event time running ``speed`` times the wall clock from the first step released."""

    def __init__(self, speed: float) -> None:
        self._speed = speed
        self._origin: tuple[float, int] | None = None  # (monotonic s, event ms)
        self.released_ms: int | None = None  # the end of the last step released

    def due(self, end_ms: int) -> float:
        """The monotonic time at which event time reaches ``end_ms`` (now before the start)."""
        if self._origin is None:
            return time.monotonic()
        origin_wall, origin_ms = self._origin
        return origin_wall + (end_ms - origin_ms) / 1000 / self._speed

    def release(self, batches: Iterator[SimBatch]) -> Iterator[SimBatch]:
        """Each step once the scaled wall clock has reached its end."""
        origin_wall = time.monotonic()
        for step in batches:
            if self._origin is None:
                self._origin = (origin_wall, step.start_ms)
            delay = self.due(step.end_ms) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.released_ms = step.end_ms
            yield step


def _at_speed(batches: Iterator[SimBatch], speed: float) -> Iterator[SimBatch]:
    """Release each step only when the wall clock, scaled by ``speed``, has reached its end."""
    return _SpeedClock(speed).release(batches)


class _WallClockSimulator:
    """A simulator whose steps come out at ``speed`` times the wall clock."""

    def __init__(
        self, sim: Simulator, speed: float, tap: Callable[[SimBatch], SimBatch] | None = None
    ) -> None:
        self._sim = sim
        self._speed = speed
        self._tap = tap
        self._clock = _SpeedClock(speed)
        self._step_ms = 0

    def batches(self, step_ms: int, start_index: int = 0) -> Iterator[SimBatch]:
        self._step_ms = step_ms
        self._clock = _SpeedClock(self._speed)
        steps = self._clock.release(self._sim.batches(step_ms, start_index=start_index))
        return steps if self._tap is None else map(self._tap, steps)

    def behind(self) -> bool:
        """Is the next step already due (its consumer is late)?"""
        last = self._clock.released_ms
        return last is not None and time.monotonic() >= self._clock.due(last + self._step_ms)


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
    the wall clock (the live demo).

    Simulated minutes are merged into chunks of ``PRODUCE_CHUNK_EVENTS`` (with ``rate``,
    ``PACED_CHUNK_S`` worth of events) before they are encoded, so the fixed cost of encoding
    a chunk is spread over many events; a read-ahead thread simulates and encodes the next
    chunk while this one is queued.

    Raises:
        TransientError: records were still undelivered after the final flush.
    """
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
    step_ms = 60_000 if speed is None else _live_step_ms(speed)
    steps: Iterator[SimBatch] = Simulator(settings).batches(step_ms=step_ms)
    if speed is not None:
        steps = _at_speed(steps, speed)
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
    while the engine reads the topics with :attr:`source` (and :meth:`before_commit` copies
    dead letters to ``<topic>.dlq``, as ``stream`` does).

    The source starts every partition at the first record stamped at or after the moment
    the demo was built, so records of earlier demos on the same topics are not counted again
    (the demo's store starts empty). Each event is then counted once: the engine commits
    Kafka offsets with its results, and the producer is idempotent.
    """

    def __init__(self, kafka: KafkaSettings, *, users: int, seed: int, speed: float) -> None:
        """Creates the topics when missing (idempotent).

        Raises:
            SourceError: the cluster cannot be reached or refused a topic.
        """
        from backbeat.transport.kafka.admin import backbeat_topics, create_topics
        from backbeat.transport.kafka.dead_letters import DeadLetterProducer
        from backbeat.transport.kafka.source import KafkaSource

        create_topics(kafka, backbeat_topics(kafka))
        self.source: KafkaSource = KafkaSource(
            kafka, backbeat_topics(kafka, dlq=False), start=datetime.now(UTC)
        )
        self._dead_letters: DeadLetterProducer = DeadLetterProducer(kafka)
        self._stop = threading.Event()
        self._report: DeliveryReport | None = None
        self._error: Exception | None = None
        self._thread = threading.Thread(
            target=self._produce,
            args=(live_settings(users=users, seed=seed), kafka, speed),
            name="backbeat-demo-producer",
            daemon=True,
        )
        self._on_error: Callable[[], None] = lambda: None

    def before_commit(self, commit: Commit) -> None:
        """Engine hook: dead letters to Kafka before the batch commits."""
        self._dead_letters.before_commit(commit)

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
        self._dead_letters.close()
        if self._error is not None:
            raise self._error
        return self._report
