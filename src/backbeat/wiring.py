"""Composition root: builds simulators, sources and runs from CLI-level choices.

Commands stay thin by calling one function here; library modules never import this file.

Next: ``cli.py`` (the caller), ``backbeat.simulate`` and ``backbeat.transport`` (what is built).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
from rich.console import Console

from backbeat.events.schema import Topic
from backbeat.simulate.config import EventsimConfig, default_config, load_config
from backbeat.simulate.pacing import paced
from backbeat.simulate.simulator import SimBatch, Simulator, SimulatorSettings
from backbeat.simulate.writer import write_run
from backbeat.transport.inprocess import SimulatorSource
from backbeat.transport.kafka.settings import KafkaSettings
from backbeat.ui.progress import StatusLine

if TYPE_CHECKING:
    from backbeat.transport.kafka.producer import DeliveryReport

LIVE_STEP_S = 0.25
FILE_STEP_MS = 600_000


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


def live_source(*, users: int, seed: int, speed: float) -> SimulatorSource:
    """A continuous simulator whose event time runs ``speed`` times faster than the wall clock,
    starting now, handed out in steps of 250 ms of wall time."""
    now = datetime.now(UTC).replace(microsecond=0)
    settings = SimulatorSettings(
        users=users, seed=seed, start=now, end=None, config=default_config()
    )
    step_ms = max(1, int(LIVE_STEP_S * speed * 1000))
    sim = _WallClockSimulator(Simulator(settings), speed)
    return SimulatorSource(sim, step_ms=step_ms, steps_per_poll=1)  # type: ignore[arg-type]


class _WallClockSimulator:
    """Releases each simulator step only when the scaled wall clock has reached its end."""

    def __init__(self, sim: Simulator, speed: float) -> None:
        self._sim = sim
        self._speed = speed

    def batches(self, step_ms: int, start_index: int = 0) -> Iterator[SimBatch]:
        origin_wall = time.monotonic()
        origin_ms: int | None = None
        for step in self._sim.batches(step_ms, start_index=start_index):
            if origin_ms is None:
                origin_ms = step.start_ms
            due = origin_wall + (step.end_ms - origin_ms) / 1000 / self._speed
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield step


def produce_to_kafka(
    settings: SimulatorSettings,
    kafka: KafkaSettings,
    topics: set[Topic] | None = None,
    rate: float | None = None,
    total: int | None = None,
    progress: bool = True,
) -> DeliveryReport:
    """Simulate and produce to Kafka until the run ends or ``total`` events were queued;
    flushes on the way out (Ctrl-C included) and returns what the broker acknowledged.

    Raises:
        TransientError: records were still undelivered after the final flush.
    """
    from backbeat.transport.kafka.producer import EventProducer

    producer = EventProducer(kafka, topics)
    batches: Iterator[SimBatch] = Simulator(settings).batches(step_ms=60_000)
    if rate is not None:
        batches = paced(batches, rate)
    started, queued = time.monotonic(), 0
    report = producer.report
    try:
        line = StatusLine(Console(stderr=True), progress, total=total, description="producing")
        with line as status:
            for step in batches:
                tables = step.tables
                if total is not None and queued + step.n_events > total:
                    tables = _first(tables, total - queued)
                queued += producer.send(tables)
                producer.poll()
                rate_now = report.delivered / max(time.monotonic() - started, 1e-9)
                away = producer.watch.unreachable_s
                status.advance(
                    queued,
                    f"{report.delivered:,} delivered · {rate_now:,.0f} events/s · "
                    f"{report.failed:,} delivery errors"
                    + (f" · broker unreachable for {away:.0f}s" if away is not None else ""),
                )
                if total is not None and queued >= total:
                    break
    finally:
        producer.close()
    return report


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
