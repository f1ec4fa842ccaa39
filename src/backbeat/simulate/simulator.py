"""The public entry point: settings in, a deterministic stream of Arrow batches out.

``Simulator(settings).batches(step_ms)`` yields ``SimBatch`` objects, one per ``step_ms`` of
event time, each holding the four topic tables with exactly ``arrow_schema(topic)`` and rows
sorted by (ts, sessionId, itemInSession). Same settings => identical batches, and because the
engine is counter-based the events do not depend on ``step_ms`` either (only how they are cut).
``batches(start_index=k)`` fast-forwards to batch ``k`` without building tables, which is how a
restarted pipeline resumes. Internally the engine runs whole chunks of steps (about
``CHUNK_EVENTS`` events, at most ``CHUNK_MAX_MS``): fewer, larger NumPy rounds and one set of
tables per chunk, which batches slice without copying. A run starts in steady state, sessions
under way (``steady.py``), and its session and event ids are its own (``run_scope``,
``scope.py``), so runs with different settings never cancel each other in one store.
Scheduled incidents (``incidents.py``) add a crowd's events or lose some of each chunk's
(``incident_effects.py``).

Next: ``pacing.py`` (wall-clock rate limit) and ``writer.py`` (JSONL files).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import numpy as np
import pyarrow as pa

from backbeat.errors import ConfigError
from backbeat.events.schema import TS_MAX_MS, TS_MIN_MS, Topic
from backbeat.simulate.catalog import Catalog
from backbeat.simulate.config import EventsimConfig
from backbeat.simulate.defaults import default_config
from backbeat.simulate.engine import Engine, check_machine
from backbeat.simulate.identity import identity_pool
from backbeat.simulate.incident_effects import IncidentEffects, RunParts
from backbeat.simulate.incidents import Incident
from backbeat.simulate.machine import Machine, compile_machine
from backbeat.simulate.scope import RunScope
from backbeat.simulate.synthetic import synthetic_catalog
from backbeat.simulate.tables import TableBuilder
from backbeat.simulate.users import Users, make_users

FAST_FORWARD_MS: Final = 6 * 3_600_000
CHUNK_EVENTS: Final = 50_000
"""Events simulated per engine call; batches are zero-copy slices of the chunk's tables."""
CHUNK_MAX_MS: Final = 3_600_000


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """What to simulate.

    Attributes:
        users: size of the initial population.
        seed: seeds everything (users, catalog, behaviour); the config's own seed is ignored.
        start: first event time (timezone-aware).
        end: stop before this time; None runs forever.
        config: the site (eventsim format); default: ``default_config()``.
        catalog: tracks to play; default: ``synthetic_catalog(seed=seed)``.
        incidents: spikes and drops of activity (``incidents.py``); they change no event
            outside their windows and scopes, nor the run's ids.
    """

    users: int = 10_000
    seed: int = 0
    start: datetime = datetime(2025, 1, 6, tzinfo=UTC)
    end: datetime | None = None
    config: EventsimConfig = field(default_factory=default_config)
    catalog: Catalog | None = None
    incidents: tuple[Incident, ...] = ()

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ConfigError(f"users must be >= 1, got {self.users}")
        if not 0 <= self.seed < 2**63:
            raise ConfigError(f"seed must be in [0, 2**63), got {self.seed}")
        for name, when in (("start", self.start), ("end", self.end)):
            if when is not None and when.tzinfo is None:
                raise ConfigError(f"{name} must be timezone-aware (e.g. UTC), got {when}")
        if self.end is not None and self.end <= self.start:
            raise ConfigError(f"end ({self.end}) must be after start ({self.start})")
        if not TS_MIN_MS <= _ms(self.start) < TS_MAX_MS:
            raise ConfigError(f"start {self.start} is outside the contract's 2000-2100 range")


@dataclass(frozen=True, slots=True)
class SimBatch:
    """Events with ``start_ms <= ts < end_ms``, one table per topic."""

    index: int
    start_ms: int
    end_ms: int
    tables: dict[Topic, pa.Table]

    @property
    def n_events(self) -> int:
        return sum(t.num_rows for t in self.tables.values())


class Simulator:
    """Builds the population and its state at the start once; every ``batches`` call replays
    the same run from the start."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        config = settings.config
        self.catalog = settings.catalog or synthetic_catalog(seed=settings.seed)
        self.machine: Machine = compile_machine(config)
        check_machine(self.machine)
        self.start_ms = _ms(settings.start)
        self.end_ms = None if settings.end is None else _ms(settings.end)
        self.users: Users = make_users(
            settings.seed, 1, settings.users, machine=self.machine, alpha_s=config.alpha,
            beta_s=config.beta, n_genres=len(self.catalog.genres),
            registered_before_ms=self.start_ms,
        )  # fmt: skip
        self.scope = run_scope(settings, self.catalog)
        self.builder = TableBuilder(
            identity_pool(settings.seed), self.machine, self.catalog, self.scope
        )
        self.population: Users = self.users
        """Everyone who has arrived by the end of the latest simulated chunk (``growth-rate``)."""
        self._at_start = Engine(
            users=self.users, machine=self.machine, catalog=self.catalog,
            config=self.settings.config, seed=self.settings.seed, start_ms=self.start_ms,
            scope=self.scope,
        )  # fmt: skip
        """The engine at the start, in steady state (built once: it simulates the sessions
        under way there); every ``batches`` call runs a copy."""
        self._crowds: dict[int, Engine] = {}
        """Incident crowds' engines at their windows' starts, built once when first needed."""

    def _engine(self) -> Engine:
        return self._at_start.copy()

    def _effects(self) -> IncidentEffects | None:
        """This pass's incidents (None without any); their crowds join the users at the
        start."""
        if not self.settings.incidents:
            return None
        run = RunParts(
            users=self.users, machine=self.machine, catalog=self.catalog,
            config=self.settings.config, seed=self.settings.seed, scope=self.scope,
            builder=self.builder, crowds=self._crowds,
        )  # fmt: skip
        return IncidentEffects(self.settings.incidents, run)

    def batches(self, step_ms: int = 60_000, start_index: int = 0) -> Iterator[SimBatch]:
        """Yield consecutive batches of ``step_ms`` event time, from batch ``start_index``.

        Raises:
            ConfigError: ``step_ms`` < 1 or ``start_index`` < 0.
        """
        if step_ms < 1 or start_index < 0:
            raise ConfigError(
                f"need step_ms >= 1 and start_index >= 0, got {step_ms}, {start_index}"
            )
        engine, effects = self._engine(), self._effects()
        t = self.start_ms
        resume_at = self.start_ms + start_index * step_ms
        while t < resume_at:  # fast-forward: same events, no tables
            t_next = min(t + FAST_FORWARD_MS, resume_at)
            engine.step(t, t_next)
            t = t_next
        index, chunk_steps = start_index, 1
        while self.end_ms is None or t < self.end_ms:
            chunk_end = t + chunk_steps * step_ms
            if self.end_ms is not None:
                chunk_end = min(chunk_end, self.end_ms)
            cols = engine.step(t, chunk_end)
            self.population = engine.users
            chunk = self.builder.build(cols, engine.users, t)
            if effects is not None:
                chunk = effects.apply(chunk, t, chunk_end)
            ts = {topic: table["ts"].to_numpy() for topic, table in chunk.items()}
            while t < chunk_end:
                t_end = min(t + step_ms, chunk_end)
                tables = {}
                for topic, table in chunk.items():
                    lo, hi = np.searchsorted(ts[topic], (t, t_end))
                    tables[topic] = table.slice(lo, hi - lo)
                yield SimBatch(index=index, start_ms=t, end_ms=t_end, tables=tables)
                index, t = index + 1, t_end
            n_events = sum(table.num_rows for table in chunk.values())
            chunk_steps = _chunk_steps(n_events / chunk_steps, step_ms)

    def resume(self, index: int, step_ms: int = 60_000) -> Iterator[SimBatch]:
        """Same as ``batches(step_ms, start_index=index)``."""
        return self.batches(step_ms, start_index=index)

    def run(self, step_ms: int = 3_600_000) -> dict[Topic, pa.Table]:
        """Every event of a bounded run (``end`` must be set), one table per topic."""
        if self.end_ms is None:
            raise ConfigError("run() needs settings.end; use batches() for a continuous run")
        parts: dict[Topic, list[pa.Table]] = {topic: [] for topic in Topic}
        for batch in self.batches(step_ms):
            for topic, table in batch.tables.items():
                parts[topic].append(table)
        return {topic: pa.concat_tables(tables) for topic, tables in parts.items()}


def run_scope(settings: SimulatorSettings, catalog: Catalog) -> RunScope:
    """The scope of a simulated run: a digest of everything that decides its events (seed,
    users, start, the site, the catalog), not of its end nor of the config's own seed and dates
    (the settings' win)."""
    site = dataclasses.replace(settings.config, seed=0, start_date=None, end_date=None)
    return RunScope.of(
        "simulator/1", settings.seed, settings.users, _ms(settings.start), repr(site),
        catalog.fingerprint,
    )  # fmt: skip


def _chunk_steps(events_per_step: float, step_ms: int) -> int:
    """How many steps to simulate at once: about ``CHUNK_EVENTS``, at most ``CHUNK_MAX_MS``."""
    limit = max(1, CHUNK_MAX_MS // step_ms)
    return int(min(max(CHUNK_EVENTS // max(events_per_step, 1.0), 1), limit))


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)
