"""The simulator starts in steady state: sessions are under way at the start, and its first
hour carries as many events as the same hour of a run that has been going for a day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from backbeat.events.schema import Topic
from backbeat.simulate import Simulator, SimulatorSettings, default_config
from backbeat.simulate.calendar import ActivityTable

from .conftest import MONDAY, Run

HOUR = 3_600_000
TUESDAY = MONDAY + timedelta(days=1)


def _hour(start: datetime, index: int, users: int = 10_000, seed: int = 1) -> int:
    """Events in hour ``index`` of a run starting at ``start`` (fast-forwarded to it)."""
    sim = Simulator(SimulatorSettings(users=users, seed=seed, start=start))
    return next(iter(sim.batches(HOUR, start_index=index))).n_events


def test_the_first_hour_carries_the_events_of_the_same_hour_a_day_later() -> None:
    # A weekday: a Monday's first hours (UTC) are Sunday evening in America, a weekend hour.
    ratio = _hour(TUESDAY, 0) / _hour(TUESDAY, 24)
    assert 0.8 <= ratio <= 1.2  # 0.98 here; 0.51 when every user started idle


def test_a_monday_starts_as_a_run_begun_the_day_before_goes_on() -> None:
    ratio = _hour(MONDAY, 0) / _hour(MONDAY - timedelta(days=1), 24)
    assert 0.9 <= ratio <= 1.1  # 0.97 here; 0.48 when every user started idle


def test_sessions_under_way_at_the_start_carry_on(day: Run) -> None:
    pages = day.tables[Topic.PAGE_VIEW]
    first_ten_minutes = pages.filter(pc.less(pages["ts"], int(MONDAY.timestamp() * 1000) + 600_000))
    items = first_ten_minutes["itemInSession"].to_numpy()
    assert (items > 0).mean() > 0.5  # mostly sessions begun before the start
    assert (items == 0).any()  # and new ones


def test_the_mean_session_length_matches_the_simulated_one(week: Run) -> None:
    from backbeat.simulate.steady import mean_session_ms

    pages = week.tables[Topic.PAGE_VIEW]
    spans = pages.group_by("sessionId").aggregate([("ts", "min"), ("ts", "max")])
    simulated = (spans["ts_max"].to_numpy() - spans["ts_min"].to_numpy()).mean()
    sim = week.sim
    song_ms = float(sim.catalog.duration_s.mean()) * 1000
    expected = mean_session_ms(sim.machine, sim.users, song_ms)
    # The model's mean counts the wait after the last event, about one song more.
    assert 0.8 <= simulated / (expected.mean() - song_ms) <= 1.25


@settings(max_examples=40, deadline=None)
@given(
    minute=st.integers(0, 7 * 1440 - 1),
    lon=st.floats(-180, 180),
    amount_min=st.floats(0, 1440),
)
def test_activity_integrated_back_reaches_the_amount(
    minute: int, lon: float, amount_min: float
) -> None:
    table = ActivityTable(default_config())
    t = int(datetime(2025, 1, 6, tzinfo=UTC).timestamp() * 1000) + minute * 60_000 + 12_345
    amount = amount_min * 60_000
    back = table.since(t, np.array([lon]), np.array([amount]))[0]
    assert back >= amount - 1e-6  # activity <= 1
    step = 10_000.0  # integrate activity over [t - back, t] in 10 s steps (midpoints)
    mids = (t - back + np.arange(step / 2, back, step)).astype(np.int64)
    integral = table(mids, np.full(len(mids), lon)).sum() * step
    assert abs(integral - amount) <= 3 * step + 1e-3 * amount


def test_with_a_flat_activity_the_age_is_the_amount() -> None:
    flat = ActivityTable(default_config().with_overrides(damping=0.0, weekend_damping=0.0))
    amounts = np.array([0.0, 1.0, 59_999.0, 3_600_000.0, 86_400_000.0])
    back = flat.since(1_736_121_600_000, np.zeros(len(amounts)), amounts)
    assert np.allclose(back, amounts)
