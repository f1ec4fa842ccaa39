"""Scheduled incidents: the flag's grammar, and spikes and drops as the events show them.

A run with an incident is compared with the same run without: inside the window the scope's
listens per minute are ``factor`` times as many, everything else is the same events.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from backbeat.commands import app
from backbeat.errors import ConfigError
from backbeat.events.schema import PLATFORMS, Topic
from backbeat.simulate import Simulator, SimulatorSettings
from backbeat.simulate.catalog import Catalog
from backbeat.simulate.incidents import Incident, parse_incident
from backbeat.simulate.users import COUNTRIES

from .conftest import MONDAY
from .invariants import assert_invariants

START = MONDAY + timedelta(hours=11)  # a Monday, 11:00 UTC
AT = START + timedelta(hours=1)  # the window: 12:00-12:15
WINDOW = (int(AT.timestamp() * 1000), int((AT + timedelta(minutes=15)).timestamp() * 1000))
runner = CliRunner()
Tables = dict[Topic, pa.Table]


def _run(catalog: Catalog, *incidents: str, step_ms: int = 600_000) -> Tables:
    chosen = SimulatorSettings(
        users=3_000, seed=5, start=START, end=START + timedelta(hours=1, minutes=45),
        catalog=catalog, incidents=tuple(parse_incident(i, START) for i in incidents),
    )  # fmt: skip
    return Simulator(chosen).run(step_ms=step_ms)


@pytest.fixture(scope="module")
def usual(small_catalog: Catalog) -> Tables:
    return _run(small_catalog)


def _where(table: pa.Table, inside: bool, **equal: str) -> pa.Table:
    """The rows inside (or outside) the window with these column values."""
    ts = table["ts"].to_numpy()
    keep = ((ts >= WINDOW[0]) & (ts < WINDOW[1])) == inside
    for column, value in equal.items():
        keep &= pc.equal(table[column], value).to_numpy(zero_copy_only=False)
    return table.filter(pa.array(keep))


def _ratio(run: Tables, usual: Tables, **scope: str) -> float:
    a = _where(run[Topic.LISTEN], True, **scope).num_rows
    return a / _where(usual[Topic.LISTEN], True, **scope).num_rows


def _same_outside(run: Tables, usual: Tables) -> None:
    for topic in Topic:
        assert _where(run[topic], False).equals(_where(usual[topic], False)), topic


# ------------------------------------------------------------------ the grammar


@pytest.mark.parametrize(
    ("text", "start", "minutes", "factor", "scope"),
    [
        ("12:00+15m:x5", AT, 15, 5.0, {}),
        ("2025-01-06T12:00+1h:x0.2", AT, 60, 0.2, {}),
        ("2025-01-06T13:00+01:00+15m:x5", AT, 15, 5.0, {}),
        ("2025-01-06T12:00:00Z+90s:x2", AT, 1.5, 2.0, {}),
        ("+1h+15m:x0", AT, 15, 0.0, {}),
        ("12:00+15m:x5:platform=Android", AT, 15, 5.0, {"platform": "android"}),
        (
            "12:00+2h:x0.5:country=us:platform=ios",
            AT,
            120,
            0.5,
            {"country": "US", "platform": "ios"},
        ),
        ("10:50+15m:x3", START - timedelta(minutes=10), 15, 3.0, {}),  # under way at the start
        ("10:00+15m:x3", START + timedelta(hours=23), 15, 3.0, {}),  # over: the next day's
    ],
)
def test_good_values(
    text: str, start: datetime, minutes: float, factor: float, scope: dict[str, str]
) -> None:
    incident = parse_incident(text, START)
    assert incident == Incident(start, start + timedelta(minutes=minutes), factor, **scope)
    assert incident.start.tzinfo is not None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("12:00+15m", "write WHEN+DURATION:xFACTOR"),
        ("12:00:x5", "write WHEN+DURATION:xFACTOR"),
        ("12:00+15q:x5", "write WHEN+DURATION:xFACTOR"),
        ("12:00+0m:x5", "the duration must be > 0"),
        ("24:00+15m:x5", "'24:00' is not a time of day"),
        ("noon+15m:x5", "'noon' is not an ISO time"),
        ("+soon+15m:x5", "is not +DURATION"),
        ("12:00+15m:xfive", "xfive is not a number"),
        ("12:00+15m:x-1", "must be in x0..x20"),
        ("12:00+15m:x21", "must be in x0..x20"),
        ("12:00+15m:x5:platform=nokia", "unknown platform 'nokia'"),
        ("12:00+15m:x5:country=XX", "unknown country 'XX'"),
        ("12:00+15m:x5:city=Paris", "'city=Paris' is not platform=P or country=CC"),
        ("12:00+15m:x5:platform=ios:platform=tv", "'platform=tv' is not"),
    ],
)
def test_bad_values_name_the_value_and_the_form(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_incident(text, START)
    assert f"--incident {text!r}" in str(err.value)
    assert says in str(err.value)
    assert "e.g. 12:00+15m:x5" in str(err.value)


@pytest.mark.parametrize("command", ["simulate", "produce", "demo"])
def test_a_bad_value_is_one_line_from_every_simulating_command(
    command: str, tmp_path: Path
) -> None:
    where = ["--out", str(tmp_path)] if command == "simulate" else []
    if command == "demo":
        where = ["--store", str(tmp_path / "store"), "--no-web"]
    result = runner.invoke(app, [command, *where, "--incident", "12:00+15m:x5:platform=nokia"])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, result.output
    assert result.output.startswith("error: --incident '12:00+15m:x5:platform=nokia'")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["simulate", "produce", "demo"])
def test_every_simulating_command_takes_the_flag(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert "--incident" in result.output


# ------------------------------------------------------------------ the events


def test_a_spike_multiplies_listens_in_the_window_only(
    small_catalog: Catalog, usual: Tables
) -> None:
    spike = _run(small_catalog, "12:00+15m:x5")
    assert 3.5 <= _ratio(spike, usual) <= 6.5
    per_minute = np.bincount(
        (_where(spike[Topic.LISTEN], True)["ts"].to_numpy() - WINDOW[0]) // 60_000, minlength=15
    )
    usual_per_minute = np.bincount(
        (_where(usual[Topic.LISTEN], True)["ts"].to_numpy() - WINDOW[0]) // 60_000, minlength=15
    )
    assert (per_minute[:4] > 2.5 * usual_per_minute[:4]).all()  # from the first minutes on
    assert (
        _where(spike[Topic.PAGE_VIEW], True).num_rows
        > 3 * _where(usual[Topic.PAGE_VIEW], True).num_rows
    )
    _same_outside(spike, usual)


def test_a_drop_thins_listens_in_the_window_only(small_catalog: Catalog, usual: Tables) -> None:
    drop = _run(small_catalog, "12:00+15m:x0.2")
    assert 0.12 <= _ratio(drop, usual) <= 0.28
    _same_outside(drop, usual)
    kept = _where(drop[Topic.LISTEN], True)["eventId"]
    assert pc.all(pc.is_in(kept, _where(usual[Topic.LISTEN], True)["eventId"])).as_py()


def test_a_platform_spike_changes_that_platform_only(small_catalog: Catalog, usual: Tables) -> None:
    spike = _run(small_catalog, "12:00+15m:x5:platform=android")
    assert 3.5 <= _ratio(spike, usual, platform="android") <= 6.5
    others = pc.not_equal(spike[Topic.LISTEN]["platform"], "android")
    usual_others = pc.not_equal(usual[Topic.LISTEN]["platform"], "android")
    assert spike[Topic.LISTEN].filter(others).equals(usual[Topic.LISTEN].filter(usual_others))
    _same_outside(spike, usual)


def test_a_country_drop_changes_that_country_only(small_catalog: Catalog, usual: Tables) -> None:
    drop = _run(small_catalog, "12:00+15m:x0.2:country=US")
    assert 0.12 <= _ratio(drop, usual, country="US") <= 0.28
    others = pc.not_equal(drop[Topic.LISTEN]["country"], "US")
    usual_others = pc.not_equal(usual[Topic.LISTEN]["country"], "US")
    assert drop[Topic.LISTEN].filter(others).equals(usual[Topic.LISTEN].filter(usual_others))
    not_songs = pc.not_equal(drop[Topic.PAGE_VIEW]["page"], "NextSong")
    usual_not_songs = pc.not_equal(usual[Topic.PAGE_VIEW]["page"], "NextSong")
    assert (
        drop[Topic.PAGE_VIEW]
        .filter(not_songs)
        .equals(usual[Topic.PAGE_VIEW].filter(usual_not_songs))
    )
    _same_outside(drop, usual)


def test_incidents_are_deterministic_whatever_the_step(small_catalog: Catalog) -> None:
    both = ("12:00+15m:x3:country=US", "12:05+5m:x0.5")
    coarse = _run(small_catalog, *both, step_ms=3_600_000)
    fine = _run(small_catalog, *both, step_ms=60_000)
    for topic in Topic:
        assert coarse[topic].equals(fine[topic]), topic
        ids = coarse[topic]["eventId"]
        assert pc.count_distinct(ids).as_py() == len(ids), topic


def test_a_resumed_run_catches_the_crowd_up(small_catalog: Catalog) -> None:
    chosen = SimulatorSettings(
        users=500, seed=2, start=START, end=START + timedelta(hours=2), catalog=small_catalog,
        incidents=(parse_incident("11:30+1h:x4", START),),
    )  # fmt: skip
    sim = Simulator(chosen)
    full = list(sim.batches(step_ms=600_000))
    resumed = list(sim.resume(5, step_ms=600_000))  # 11:50, inside the window
    for a, b in zip(full[5:], resumed, strict=True):
        for topic in Topic:
            assert a.tables[topic].equals(b.tables[topic]), (a.index, topic)


def test_the_same_flags_give_byte_identical_files(tmp_path: Path) -> None:
    args = [
        "simulate", "--users", "300", "--seed", "4", "--start", "2026-01-07T11:00:00Z",
        "--end", "2026-01-07T13:00:00Z", "--incident", "2026-01-07T12:00+15m:x5",
        "--incident", "12:30+10m:x0.2:platform=ios",
    ]  # fmt: skip
    for name in ("a", "b"):
        result = runner.invoke(app, [*args, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    for topic in Topic:
        a = (tmp_path / "a" / f"{topic.value}.jsonl").read_bytes()
        assert a == (tmp_path / "b" / f"{topic.value}.jsonl").read_bytes(), topic
    assert (tmp_path / "a" / "listen_events.jsonl").stat().st_size > 0


def test_crowd_users_and_sessions_are_their_own(small_catalog: Catalog, usual: Tables) -> None:
    spike = _run(small_catalog, "12:00+15m:x2")
    listens = spike[Topic.LISTEN]
    new = listens.filter(pc.invert(pc.is_in(listens["eventId"], usual[Topic.LISTEN]["eventId"])))
    assert new.num_rows > 0
    users = pc.drop_null(new["userId"]).to_numpy()
    assert (users >= 10**12).all()
    usual_sessions = usual[Topic.LISTEN]["sessionId"]
    assert not pc.any(pc.is_in(new["sessionId"], usual_sessions)).as_py()


def test_runs_with_incidents_keep_the_contract(small_catalog: Catalog) -> None:
    run = _run(
        small_catalog, "12:00+15m:x4:platform=ios", "12:05+10m:x0.5", "12:10+20m:x0.3:country=US"
    )
    assert_invariants(run)


@settings(max_examples=60, deadline=None)
@given(
    minute=st.integers(0, 24 * 60 - 1),
    length=st.integers(1, 600),
    unit=st.sampled_from("smh"),
    factor=st.sampled_from([0.0, 0.2, 0.5, 1.0, 2.0, 5.0, 20.0]),
    platform=st.none() | st.sampled_from(PLATFORMS),
    country=st.none() | st.sampled_from(COUNTRIES),
)
def test_every_well_formed_value_parses_to_its_parts(
    minute: int, length: int, unit: str, factor: float, platform: str | None, country: str | None
) -> None:
    scope = (f":platform={platform}" if platform else "") + (
        f":country={country}" if country else ""
    )
    text = f"{minute // 60:02d}:{minute % 60:02d}+{length}{unit}:x{factor:g}{scope}"
    incident = parse_incident(text, START)
    span = timedelta(seconds=length * {"s": 1, "m": 60, "h": 3600}[unit])
    assert incident.end - incident.start == span
    assert (incident.factor, incident.platform, incident.country) == (factor, platform, country)
    assert START < incident.end <= START + timedelta(days=1) + span
    assert (incident.start.hour, incident.start.minute) == divmod(minute, 60)
