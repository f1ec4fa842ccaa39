"""The star schema (``backbeat batch model``) over a warehouse loaded from a simulated run.

The run is three days of 300 users on a site whose upgrade and downgrade pages are visited
far more often than the default's, so many users change level, some several times. The
staging tables get the simulated events plus a second delivery of some listens under new
event ids (what the gold table drops); the model is built twice. Every expectation is
computed again from the raw simulated events.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from backbeat.commands import app
from backbeat.events.schema import Topic
from backbeat.simulate import Simulator, SimulatorSettings
from backbeat.simulate.defaults import default_config
from backbeat.sinks.lake.layout import HOUR_MS, Lake
from backbeat.warehouse.catalog import Warehouse, to_table_rows
from backbeat.warehouse.dedup import distinct_listens
from backbeat.warehouse.model import TABLES, ModelReport, build_model

runner = CliRunner()
START = datetime(2025, 1, 6, tzinfo=UTC)
DAYS = 3
# (page, next page) -> probability: users reach the level pages and submit far more often.
LEVEL_CHANGES = {
    ("Home", "Upgrade"): 0.05,
    ("Home", "Downgrade"): 0.05,
    ("Upgrade", "Submit Upgrade"): 0.5,
    ("Upgrade", "Home"): 0.3,
    ("Downgrade", "Submit Downgrade"): 0.5,
    ("Downgrade", "Home"): 0.25,
}


@dataclass(frozen=True)
class Built:
    raw: dict[Topic, pa.Table]
    first: ModelReport
    tables: dict[str, pa.Table]  # after the first build
    again: dict[str, pa.Table]  # after the second


def simulated() -> dict[Topic, pa.Table]:
    config = default_config()
    transitions = tuple(
        dataclasses.replace(t, p=LEVEL_CHANGES.get((t.source.page, t.dest.page), t.p))
        for t in config.transitions
    )
    settings = SimulatorSettings(
        users=300,
        seed=11,
        start=START,
        end=START.replace(day=START.day + DAYS),
        config=dataclasses.replace(config, transitions=transitions),
    )
    return Simulator(settings).run(step_ms=6 * HOUR_MS)


def redelivered(listens: pa.Table) -> pa.Table:
    """Every 50th listen delivered again under a new event id (a replay by another writer)."""
    again = listens.take(list(range(0, listens.num_rows, 50)))
    ids = pc.binary_join_element_wise(again.column("eventId"), "again", "-")
    return again.set_column(again.schema.get_field_index("eventId"), "eventId", ids)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The staging tables hold the raw events (and the redelivered listens), the gold table
    their distinct listens, each in one commit: what ``load-hour`` and ``dedup`` leave after
    every hour, without their few hundred commits (minutes on SQLite). Built once by the
    library, then again by ``backbeat batch model``."""
    root = tmp_path_factory.mktemp("model")
    raw = simulated()
    warehouse = Warehouse.open(Lake.open(str(root / "lake")), f"sqlite:///{root / 'wh.db'}")
    staged = {**raw, Topic.LISTEN: pa.concat_tables([raw[Topic.LISTEN],
                                                     redelivered(raw[Topic.LISTEN])])}  # fmt: skip
    for topic, events in staged.items():
        warehouse.staging(topic).append(to_table_rows(events, topic))
    listens = warehouse.staging(Topic.LISTEN).scan().to_arrow()
    warehouse.gold().append(distinct_listens(listens))
    first = build_model(warehouse)
    tables = {name: warehouse.refresh(name).scan().to_arrow() for name in TABLES}
    result = runner.invoke(app, ["--json", "batch", "model", "--lake", str(root / "lake"),
                                 "--warehouse", f"sqlite:///{root / 'wh.db'}"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["tables"] == first.rows
    again = {name: warehouse.refresh(name).scan().to_arrow() for name in TABLES}
    return Built(raw, first, tables, again)


def level_changes(raw: dict[Topic, pa.Table]) -> dict[int, list[str]]:
    """Each user's levels, one per period, from the raw events of every topic in event order
    (a status change after the page view it shares its instant with)."""
    events = []
    for topic, table in raw.items():
        late = int(topic is Topic.STATUS_CHANGE)
        cols = table.select(["ts", "sessionId", "itemInSession", "userId", "level"]).to_pylist()
        events += [(e["userId"], e["ts"], e["sessionId"], e["itemInSession"], late, e["level"])
                   for e in cols if e["userId"] is not None and e["level"] is not None]  # fmt: skip
    levels: dict[int, list[str]] = defaultdict(list)
    for user, *_, level in sorted(events):
        if not levels[user] or levels[user][-1] != level:
            levels[user].append(level)
    return dict(levels)


def test_fact_streams_has_one_row_per_distinct_listen(built: Built) -> None:
    con = duckdb.connect()
    con.register("raw", built.raw[Topic.LISTEN])
    [(distinct,)] = con.sql("SELECT count(*) FROM (SELECT DISTINCT sessionId, itemInSession "
                            "FROM raw)").fetchall()  # fmt: skip
    fact = built.tables["fact_streams"]
    assert fact.num_rows == distinct == built.first.rows["fact_streams"]
    keys = set(zip(fact.column("sessionId").to_pylist(), fact.column("itemInSession").to_pylist(),
                   strict=True))  # fmt: skip
    assert len(keys) == distinct
    assert built.tables["wide_stream"].num_rows == distinct


def test_dim_users_shows_every_level_change(built: Built) -> None:
    expected = level_changes(built.raw)
    changes = built.raw[Topic.STATUS_CHANGE]
    assert changes.num_rows >= 30, "the run should change levels often"
    dim = built.tables["dim_users"].sort_by([("userId", "ascending"),
                                             ("row_activation_date", "ascending")])  # fmt: skip
    got: dict[int, list[str]] = defaultdict(list)
    for row in dim.select(["userId", "level"]).to_pylist():
        got[row["userId"]].append(row["level"])
    assert dict(got) == expected
    assert any(len(levels) >= 3 for levels in expected.values()), "someone changed back"
    # the status changes are exactly the periods after a user's first: each starts one at its
    # own instant, at its new level, right after a period at its previous level
    rows = dim.to_pylist()
    previous = {(r["userId"], r["row_activation_date"], r["level"]): before["level"]
                for before, r in itertools.pairwise(rows) if before["userId"] == r["userId"]}  # fmt: skip
    assert len(previous) == changes.num_rows
    for change in changes.to_pylist():
        at = datetime.fromtimestamp(change["ts"] / 1000, tz=UTC)
        assert previous[(change["userId"], at, change["level"])] == change["prevLevel"]


def test_dim_users_periods_tile_time(built: Built) -> None:
    rows = built.tables["dim_users"].sort_by([("userId", "ascending"),
                                              ("row_activation_date", "ascending")]).to_pylist()  # fmt: skip
    by_user: dict[int, list[dict[str, object]]] = defaultdict(list)
    for row in rows:
        by_user[row["userId"]].append(row)
    for periods in by_user.values():
        for before, after in itertools.pairwise(periods):
            assert before["row_expiration_date"] == after["row_activation_date"]
            assert before["level"] != after["level"]
            assert not before["current_row"]
        assert periods[-1]["current_row"]
        assert periods[-1]["row_expiration_date"].year == 9999


def test_every_fact_row_points_at_the_user_row_valid_at_its_ts(built: Built) -> None:
    con = duckdb.connect()
    con.register("fact", built.tables["fact_streams"])
    con.register("dim", built.tables["dim_users"])
    [(unkeyed, outside, other_level)] = con.sql("""
        SELECT count(*) FILTER (WHERE d.user_key IS NULL),
               count(*) FILTER (WHERE NOT (f.ts >= d.row_activation_date
                                           AND f.ts < d.row_expiration_date)),
               count(*) FILTER (WHERE f.level <> d.level)
        FROM fact AS f LEFT JOIN dim AS d USING (user_key)
        WHERE f.userId IS NOT NULL
    """).fetchall()
    assert (unkeyed, outside, other_level) == (0, 0, 0)


def test_every_fact_key_names_a_dimension_row(built: Built) -> None:
    fact = built.tables["fact_streams"]
    for key, dim in (("song_key", "dim_songs"), ("artist_key", "dim_artists"),
                     ("location_key", "dim_location"), ("datetime_key", "dim_datetime")):  # fmt: skip
        known = set(built.tables[dim].column(key).to_pylist())
        used = set(fact.column(key).drop_null().to_pylist())
        assert used <= known, key
        assert len(known) == built.tables[dim].num_rows, f"{dim}: one row per key"
    hours = built.tables["dim_datetime"]
    assert hours.num_rows == DAYS * 24 or hours.num_rows == DAYS * 24 - 1
    weekend = {r["date"].isoweekday() >= 6 for r in hours.to_pylist() if r["weekend_flag"]}
    assert weekend <= {True}


def test_rebuilding_gives_the_same_rows_and_keys(built: Built) -> None:
    for name in TABLES:
        first, again = built.tables[name], built.again[name]
        order = [(c, "ascending") for c in first.column_names]
        assert first.sort_by(order).equals(again.sort_by(order)), name


def test_model_needs_a_loaded_warehouse(tmp_path: Path) -> None:
    lake, where = str(tmp_path / "lake"), f"sqlite:///{tmp_path / 'wh.db'}"
    result = runner.invoke(app, ["batch", "model", "--lake", lake, "--warehouse", where])
    assert result.exit_code == 1
    assert "no backbeat.listens table yet" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["batch", "model", "--lake", lake, "--warehouse-option", "x"])
    assert result.exit_code == 1
    assert "--warehouse-option 'x': write it as KEY=VALUE" in result.output
