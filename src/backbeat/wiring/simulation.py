"""Simulated runs as the commands use them: settings from flags, JSONL files, a live source.

``simulator_settings`` merges flags over an eventsim config file over defaults, and loads
``--catalog`` files (``simulate.catalog_file``: the format is detected);
``write_jsonl_run`` writes one JSONL file per topic with a progress bar; ``live_source`` is a
continuous simulator released at ``speed`` times the wall clock (the demo's source).

Next: ``produce.py`` (simulated runs into Kafka), ``backbeat.simulate`` (the simulator).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

from backbeat.simulate.catalog import Catalog
from backbeat.simulate.catalog_file import load_catalog
from backbeat.simulate.config import EventsimConfig, load_config
from backbeat.simulate.defaults import default_config
from backbeat.simulate.incidents import parse_incidents
from backbeat.simulate.pacing import paced
from backbeat.simulate.simulator import SimBatch, Simulator, SimulatorSettings
from backbeat.simulate.writer import write_run
from backbeat.transport.inprocess import SimulatorSource
from backbeat.ui.progress import StatusLine

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
    catalog: Path | None = None,
    incidents: tuple[str, ...] = (),
) -> SimulatorSettings:
    """Settings from flags: flags override the config file, which overrides defaults;
    ``incidents`` (``--incident`` values) are resolved against the run's start.

    Raises:
        ConfigError: the config file or an incident is invalid.
        SourceError: the config or catalog file cannot be read, or is in no known format.
    """
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
        catalog=_catalog(catalog),
        incidents=parse_incidents(incidents, begin),
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


def live_settings(
    *, users: int, seed: int, catalog: Path | None = None, incidents: tuple[str, ...] = ()
) -> SimulatorSettings:
    """A continuous run of the built-in site starting now (the demo's), playing the tracks of
    the ``catalog`` file (default: the synthetic catalog), with ``incidents`` (``--incident``
    values, resolved against now).

    Raises:
        ConfigError: an incident is invalid.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    return SimulatorSettings(
        users=users, seed=seed, start=now, end=None, config=default_config(),
        catalog=_catalog(catalog), incidents=parse_incidents(incidents, now),
    )  # fmt: skip


def _catalog(path: Path | None) -> Catalog | None:
    return None if path is None else load_catalog(path)


def live_step_ms(speed: float) -> int:
    """Event time per step: 250 ms of wall time at ``speed``."""
    return max(1, int(LIVE_STEP_S * speed * 1000))


def live_source(
    *,
    users: int,
    seed: int,
    speed: float,
    tap: Callable[[SimBatch], SimBatch] | None = None,
    catalog: Path | None = None,
    incidents: tuple[str, ...] = (),
) -> SimulatorSource:
    """A continuous simulator whose event time runs ``speed`` times faster than the wall clock,
    starting now, handed out in steps of 250 ms of wall time: one step per poll, or every step
    already due when the engine fell behind (so a slow batch is followed by a bigger one, not
    by a growing backlog). ``tap`` sees each step as it is released and may add events to it
    (``benchmarks/bench_web.py`` stamps probe events)."""
    settings = live_settings(users=users, seed=seed, catalog=catalog, incidents=incidents)
    sim = _WallClockSimulator(Simulator(settings), speed, tap)
    return SimulatorSource(
        sim,  # type: ignore[arg-type]
        step_ms=live_step_ms(speed),
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


def at_speed(batches: Iterator[SimBatch], speed: float) -> Iterator[SimBatch]:
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
