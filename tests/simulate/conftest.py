"""Shared simulated runs (built once per session) for the simulator tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from backbeat.events.schema import Topic
from backbeat.simulate import Simulator, SimulatorSettings, synthetic_catalog
from backbeat.simulate.catalog import Catalog

MONDAY = datetime(2025, 1, 6, tzinfo=UTC)


@dataclass(frozen=True)
class Run:
    sim: Simulator
    tables: dict[Topic, pa.Table]
    days: float


def simulate(users: int, hours: float, seed: int = 7, **settings: object) -> Run:
    end = MONDAY + timedelta(hours=hours)
    sim = Simulator(SimulatorSettings(users=users, seed=seed, start=MONDAY, end=end, **settings))  # type: ignore[arg-type]
    return Run(sim, sim.run(step_ms=6 * 3_600_000), hours / 24)


@pytest.fixture(scope="session")
def small_catalog() -> Catalog:
    return synthetic_catalog(n_tracks=600, n_genres=12, seed=3)


@pytest.fixture(scope="session")
def week() -> Run:
    """2,000 users over one week starting on a Monday (about 1 M events)."""
    return simulate(2_000, 7 * 24)


@pytest.fixture(scope="session")
def day(small_catalog: Catalog) -> Run:
    """500 users over one day, small catalog."""
    return simulate(500, 24, catalog=small_catalog)
