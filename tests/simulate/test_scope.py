"""A run's scope: session ids in Streamify's int range, one contiguous range per run, and a
digest of exactly what decides the run's events."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from backbeat.simulate import SimulatorSettings, default_config, synthetic_catalog
from backbeat.simulate.catalog import Catalog
from backbeat.simulate.scope import SESSION_SPACE, TAG_LENGTH, RunScope
from backbeat.simulate.simulator import run_scope

from .conftest import MONDAY


@given(offset=st.integers(0, SESSION_SPACE - 1), first=st.integers(0, SESSION_SPACE - 1))
def test_session_ids_are_a_bijection_into_the_int_range(offset: int, first: int) -> None:
    scope = RunScope(tag="00000", session_offset=offset)
    local = (first + np.arange(1_000, dtype=np.int64)) % SESSION_SPACE
    ids = scope.session_ids(local)
    assert ids.min() >= 1
    assert ids.max() <= 2**31 - 1
    assert len(np.unique(ids)) == len(ids)
    assert ((ids - 1 - offset - local) % SESSION_SPACE == 0).all()


def test_the_space_wraps_at_the_top_of_the_int_range() -> None:
    scope = RunScope(tag="00000", session_offset=SESSION_SPACE - 2)
    ids = scope.session_ids(np.arange(4, dtype=np.int64))
    assert ids.tolist() == [2**31 - 2, 2**31 - 1, 1, 2]


def test_scopes_are_stable_and_follow_their_parts() -> None:
    a = RunScope.of("x", 1, b"y")
    assert a == RunScope.of("x", 1, b"y")
    assert len(a.tag) == TAG_LENGTH
    assert set(a.tag) <= set("0123456789abcdefghjkmnpqrstvwxyz")
    assert a.event_id_prefix("l") == f"l-{a.tag}-"
    assert a != RunScope.of("x", 2, b"y")
    assert a != RunScope.of("x1", b"y")  # parts are length-prefixed, not concatenated
    tags = {RunScope.of("run", k).tag for k in range(1_000)}
    assert len(tags) >= 990


def test_the_simulator_scope_is_what_decides_the_events(small_catalog: Catalog) -> None:
    base = SimulatorSettings(users=50, seed=3, start=MONDAY, end=MONDAY + timedelta(hours=1))
    scope = run_scope(base, small_catalog)
    same = [
        dataclasses.replace(base, end=MONDAY + timedelta(days=3)),  # a longer run, same events
        dataclasses.replace(base, config=default_config().with_overrides(seed=99)),
    ]
    for settings in same:
        assert run_scope(settings, small_catalog) == scope
    different = [
        dataclasses.replace(base, seed=4),
        dataclasses.replace(base, users=51),
        dataclasses.replace(base, start=MONDAY + timedelta(seconds=1)),
        dataclasses.replace(base, config=default_config().with_overrides(alpha=44.0)),
    ]
    for settings in different:
        assert run_scope(settings, small_catalog) != scope
    assert run_scope(base, synthetic_catalog(n_tracks=600, n_genres=12, seed=4)) != scope
    rebuilt = synthetic_catalog(n_tracks=600, n_genres=12, seed=3)
    assert rebuilt is not small_catalog
    assert run_scope(base, rebuilt) == scope


def test_a_catalog_fingerprint_sees_every_value(small_catalog: Catalog) -> None:
    table = small_catalog.table
    assert Catalog.from_table(table).fingerprint == small_catalog.fingerprint
    names = table["track_name"].to_pylist()
    renamed = table.set_column(
        table.schema.get_field_index("track_name"), "track_name", pa.array(["x", *names[1:]])
    )
    albums = table["album_name"].to_pylist()
    no_album = table.set_column(
        table.schema.get_field_index("album_name"), "album_name", pa.array([None, *albums[1:]])
    )
    longer = table["duration_ms"].to_numpy().copy()
    longer[-1] += 1
    slower = table.set_column(
        table.schema.get_field_index("duration_ms"), "duration_ms", pa.array(longer)
    )
    prints = {Catalog.from_table(t).fingerprint for t in (table, renamed, no_album, slower)}
    assert len(prints) == 4
