"""Behaviour of the default site against stated bounds (one simulated week, 2,000 users).

Bounds checked here (and quoted in the package docs):
- NextSong is 70-90 % of page views.
- 70-90 % of users start free; free users make 60-90 % of listens.
- 0.8-4 sessions per active user per day; 5-60 events per session on average.
- Activity (page views by the user's local solar hour) peaks between 12:00 and 18:00, and the
  quietest hour is at night (00:00-07:00).
- A weekend day has fewer events than a weekday (ratio < 0.9).
- 6-14 % of logins fail (the default site fails 10 %).
- A user's most listened genre is among their 3 favourite (hidden taste) genres for >= 90 % of
  users with >= 30 listens; liked genres are skipped less and rated higher.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from backbeat.events.schema import Topic
from backbeat.simulate import default_config

from .conftest import MONDAY, Run, simulate


def _local(table: pa.Table) -> np.ndarray:
    return table["ts"].to_numpy() + np.rint(table["lon"].to_numpy() / 15 * 3_600_000).astype(
        np.int64
    )


def test_next_song_dominates(week: Run) -> None:
    pages = week.tables[Topic.PAGE_VIEW]
    share = pc.sum(pc.equal(pages["page"], "NextSong")).as_py() / pages.num_rows
    assert 0.70 <= share <= 0.90


def test_free_paid_split(week: Run) -> None:
    free_users = (week.sim.users.level == 0).mean()
    assert 0.70 <= free_users <= 0.90
    listens = week.tables[Topic.LISTEN]
    free_listens = pc.sum(pc.equal(listens["level"], "free")).as_py() / listens.num_rows
    assert 0.60 <= free_listens <= 0.90


def test_sessions_per_user_per_day(week: Run) -> None:
    pages = week.tables[Topic.PAGE_VIEW].filter(pc.is_valid(week.tables[Topic.PAGE_VIEW]["userId"]))
    per_user = pages.group_by("userId").aggregate([("sessionId", "count_distinct")])
    sessions = per_user["sessionId_count_distinct"].to_numpy() / week.days
    assert 0.8 <= np.median(sessions) <= 4.0
    events_per_session = pages.num_rows / pc.count_distinct(pages["sessionId"]).as_py()
    assert 5 <= events_per_session <= 60


def test_activity_peaks_in_the_afternoon(week: Run) -> None:
    hour = (_local(week.tables[Topic.PAGE_VIEW]) // 3_600_000) % 24
    counts = np.bincount(hour, minlength=24)
    assert 12 <= counts.argmax() <= 18
    assert counts.argmin() <= 7


def test_weekends_are_thinner(week: Run) -> None:
    day = (_local(week.tables[Topic.PAGE_VIEW]) - int(MONDAY.timestamp() * 1000)) // 86_400_000
    counts = np.bincount(day[(day >= 1) & (day <= 6)], minlength=7)  # whole local days only
    weekday, weekend = counts[1:5].mean(), counts[5:7].mean()
    assert weekend / weekday < 0.9


def test_failed_logins_match_the_config(week: Run) -> None:
    auth = week.tables[Topic.AUTH]
    assert auth.num_rows > 200
    failed = 1 - pc.sum(auth["success"]).as_py() / auth.num_rows
    assert 0.06 <= failed <= 0.14


def test_taste_is_recoverable(week: Run) -> None:
    listens = week.tables[Topic.LISTEN].filter(pc.is_valid(week.tables[Topic.LISTEN]["userId"]))
    genres = week.sim.catalog.genres
    g = pc.index_in(listens["genre"], value_set=pa.array(genres)).to_numpy()
    row = listens["userId"].to_numpy() - 1
    counts = np.zeros((len(week.sim.population), len(genres)))
    np.add.at(counts, (row, g), 1)
    enough = counts.sum(axis=1) >= 30
    assert enough.sum() > 500
    taste = week.sim.population.taste_matrix(len(genres))
    top3 = np.argsort(-taste, axis=1)[:, :3]
    hit = (top3 == counts.argmax(axis=1)[:, None]).any(axis=1)
    assert hit[enough].mean() >= 0.9
    # Liked genres: fewer skips, higher ratings.
    liked = taste[row, g] >= np.sort(taste, axis=1)[row, -3]
    skipped = listens["skipped"].to_numpy(zero_copy_only=False)
    assert skipped[liked].mean() < skipped[~liked].mean() - 0.1
    rating = listens["rating"].to_numpy(zero_copy_only=False).astype(float)
    assert np.nanmean(rating[liked]) > np.nanmean(rating[~liked]) + 0.5
    assert 0.6 <= np.isnan(rating).mean() <= 0.8


def test_growth_adds_users() -> None:
    config = default_config().with_overrides(growth_rate=40.0)  # ~110 newcomers a day here
    run = simulate(1_000, 48, seed=3, config=config)
    assert len(run.sim.population) > 1_000
    pages = run.tables[Topic.PAGE_VIEW]
    guests = pages.filter(pc.equal(pages["auth"], "Guest"))
    assert guests.num_rows > 50
    ids = pages["userId"].drop_null().to_numpy()
    assert ids.max() > 1_000  # newcomers registered and show up under their own id


def test_churned_users_never_return(week: Run) -> None:
    pages = week.tables[Topic.PAGE_VIEW]
    gone = pages.filter(pc.equal(pages["page"], "Cancellation Confirmation"))
    assert gone.num_rows >= 1
    assert gone["userId"].null_count == 0
    assert pc.all(pc.equal(gone["auth"], "Cancelled")).as_py()
    last_seen = (
        pages.filter(pc.is_valid(pages["userId"])).group_by("userId").aggregate([("ts", "max")])
    )
    seen = dict(zip(last_seen["userId"].to_pylist(), last_seen["ts_max"].to_pylist(), strict=True))
    for user, ts in zip(gone["userId"].to_pylist(), gone["ts"].to_pylist(), strict=True):
        assert seen[user] == ts


@pytest.mark.parametrize("level", ["free", "paid"])
def test_level_changes_emit_status_events(week: Run, level: str) -> None:
    status = week.tables[Topic.STATUS_CHANGE]
    flips = status.filter(pc.equal(status["prevLevel"], level))
    assert flips.num_rows >= 1
    assert pc.all(pc.not_equal(flips["level"], level)).as_py()


def test_simulated_span_is_respected(week: Run) -> None:
    ts = week.tables[Topic.PAGE_VIEW]["ts"].to_numpy()
    start = int(MONDAY.timestamp() * 1000)
    assert start <= ts.min()
    assert ts.max() < start + int(timedelta(days=7).total_seconds() * 1000)
