"""Hypothesis: the contract invariants hold for any seed, population size and batch size."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backbeat.events.schema import Topic
from backbeat.simulate import Simulator, SimulatorSettings
from backbeat.simulate.catalog import Catalog

from .conftest import MONDAY
from .invariants import assert_invariants


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**40),
    users=st.integers(1, 150),
    hours=st.integers(1, 6),
    step_ms=st.sampled_from([60_000, 900_000, 3_600_000]),
    offset_h=st.integers(0, 24 * 7),
)
def test_invariants_hold(
    small_catalog: Catalog, seed: int, users: int, hours: int, step_ms: int, offset_h: int
) -> None:
    start = MONDAY + timedelta(hours=offset_h)
    sim = Simulator(
        SimulatorSettings(
            users=users,
            seed=seed,
            start=start,
            end=start + timedelta(hours=hours),
            catalog=small_catalog,
        )
    )
    tables = sim.run(step_ms=step_ms)
    assert_invariants(tables)
    assert tables[Topic.PAGE_VIEW].num_rows >= tables[Topic.LISTEN].num_rows


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**40), cut=st.integers(1, 11))
def test_any_step_gives_the_same_events(small_catalog: Catalog, seed: int, cut: int) -> None:
    end = MONDAY + timedelta(hours=2)
    sim = Simulator(
        SimulatorSettings(users=60, seed=seed, start=MONDAY, end=end, catalog=small_catalog)
    )
    whole = sim.run(step_ms=2 * 3_600_000)
    pieces = sim.run(step_ms=cut * 600_000 + 1)
    for topic in Topic:
        assert whole[topic].equals(pieces[topic])


def test_settings_reject_naive_datetimes() -> None:
    from backbeat.errors import ConfigError

    with pytest.raises(ConfigError, match="timezone-aware"):
        SimulatorSettings(start=MONDAY.replace(tzinfo=None))
