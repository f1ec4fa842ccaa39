"""The recommender's inputs from the SQL stores: ``interactions`` and ``user-listens`` against
one computation over the raw log.

A small simulated log (a few thousand listens; some without a track id, some with an
upper-cased artist, some without a share listened or a completed flag) is streamed by the
engine in small batches into a DuckDB store and a PostgreSQL database; both must answer what
plain Python computes from the JSONL lines, with :data:`LISTEN_WEIGHT` re-stated below. Batch
ranges are checked the same way, the batch of each listen read back from the store, and the
rows of two adjacent batch ranges must add up to the rows of both.

Next: ``src/backbeat/sinks/sql/listeners.py`` (the SQL), ``test_postgres.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from backbeat.engine.base import EngineSettings
from backbeat.engine.pipeline import Pipeline
from backbeat.events import Topic
from backbeat.sinks import queries as q
from backbeat.sinks.base import Store
from backbeat.sinks.registry import open_store
from backbeat.sinks.sql.answers import HANDLERS
from backbeat.transport.jsonl import JsonlSource, discover
from tests.support.eventlog import generate, write_log
from tests.support.stores import ask, store_sql

Row = dict[str, Any]
KEY = ("user_id", "track")
TYPES = {
    "user_id": pa.int64(), "track": pa.string(), "track_id": pa.string(),
    "artist": pa.string(), "song": pa.string(), "genre": pa.string(), "country": pa.string(),
    "plays": pa.int64(), "weight": pa.float64(), "first_ts": pa.int64(), "last_ts": pa.int64(),
}  # fmt: skip


def _log(directory: Path) -> Path:
    """A log whose listens exercise every branch of the track key and the weight."""
    tables = generate(300, 30, seed=31)
    listens = tables[Topic.LISTEN]
    i = np.arange(listens.num_rows)

    def masked(name: str, every: int) -> pa.Array:
        return pa.array(listens.column(name).to_pylist(), mask=(i % every == 0))

    upper = pc.if_else(
        pa.array(i % 8 == 0), pc.utf8_upper(listens.column("artist")), listens.column("artist")
    )
    for name, column in (
        ("trackId", masked("trackId", 4)),
        ("listenPct", masked("listenPct", 7)),
        ("completed", masked("completed", 13)),
        ("artist", upper),
    ):
        listens = listens.set_column(listens.schema.get_field_index(name), name, column)
    tables[Topic.LISTEN] = listens
    return write_log(directory, tables, seed=32, trouble=None).directory


def _stream(events: Path, store: Store) -> None:
    try:
        settings = EngineSettings(max_batch_events=600, max_future_ms=None)
        Pipeline(JsonlSource(discover([events])), store, settings=settings).run()
    finally:
        store.close()


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _log(tmp_path_factory.mktemp("interactions") / "events")


@pytest.fixture(
    scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.integration)]
)
def store(
    request: pytest.FixtureRequest, events: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    if request.param == "duckdb":
        location = str(tmp_path_factory.mktemp("interactions-duck"))
    else:
        from tests.support.postgres import fresh_database

        location = fresh_database(request.getfixturevalue("postgres_server"))
    _stream(events, open_store(location))
    return location


def _listens(events: Path, store: str) -> list[Row]:
    """The raw listens of the log, each with the batch the store committed it in."""
    batch_of = {
        (r["session_id"], r["item"]): r["batch_id"]
        for r in store_sql(store, "SELECT session_id, item, batch_id FROM listens")
    }
    lines = (events / "listen_events.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(batch_of) == len(rows), "every listen is stored once"
    for row in rows:
        row["batch_id"] = batch_of[(row["sessionId"], row["itemInSession"])]
    return rows


def _weight(r: Row) -> float:
    """``LISTEN_WEIGHT`` in Python (SQL's three-valued logic: only a true flag counts)."""
    pct, completed = r.get("listenPct"), r.get("completed") is True
    if r.get("skipped") is True and (pct if pct is not None else 0.0) < 0.3:
        return -1.0
    return (pct if pct is not None else (1.0 if completed else 0.5)) + (0.5 if completed else 0.0)


def _track(r: Row) -> str:
    track_id = r.get("trackId")
    return track_id if track_id is not None else f"{r['artist'].lower()}\x1f{r['song'].lower()}"


def _newest(r: Row) -> tuple[int, int, int]:
    return (r["ts"], r["sessionId"], r["itemInSession"])


def _expected(rows: Iterable[Row]) -> list[Row]:
    groups: dict[tuple[int, str], list[Row]] = {}
    for r in rows:
        if r.get("userId") is not None:
            groups.setdefault((r["userId"], _track(r)), []).append(r)
    out = []
    for (user, track), listens in sorted(groups.items()):
        latest = max(listens, key=_newest)
        out.append(
            {
                "user_id": user, "track": track, "track_id": latest.get("trackId"),
                "artist": latest["artist"], "song": latest["song"],
                "genre": latest.get("genre"), "country": latest.get("country"),
                "plays": len(listens), "weight": sum(_weight(r) for r in listens),
                "first_ts": min(r["ts"] for r in listens),
                "last_ts": max(r["ts"] for r in listens),
            }
        )  # fmt: skip
    return out


def _same(got: list[Row], want: list[Row]) -> None:
    assert [{k: v for k, v in r.items() if k != "weight"} for r in got] == [
        {k: v for k, v in r.items() if k != "weight"} for r in want
    ]
    assert [r["weight"] for r in got] == pytest.approx([r["weight"] for r in want])


def test_interactions_match_the_raw_log(events: Path, store: str) -> None:
    listens = _listens(events, store)
    assert any(r.get("trackId") is None for r in listens)
    assert any(r.get("listenPct") is None for r in listens)
    ts = sorted(r["ts"] for r in listens)
    start, end = ts[len(ts) // 4], ts[3 * len(ts) // 4]
    users = sorted({r["userId"] for r in listens})[::5]
    last = max(r["batch_id"] for r in listens)
    assert last >= 4, "several batches"
    cases: list[tuple[q.Interactions, Iterable[Row]]] = [
        (q.Interactions(), listens),
        (
            q.Interactions(span=q.TimeRange(start=start, end=end)),
            (r for r in listens if start <= r["ts"] < end),
        ),
        (q.Interactions(batches=(1, 3)), (r for r in listens if 1 < r["batch_id"] <= 3)),
        (q.Interactions(users=(*users, 999_999)), (r for r in listens if r["userId"] in users)),
        (q.Interactions(users=()), ()),
        (
            q.Interactions(span=q.TimeRange(start=start), batches=(0, last - 1), users=(users[0],)),
            (
                r
                for r in listens
                if r["ts"] >= start and r["batch_id"] < last and r["userId"] == users[0]
            ),
        ),
    ]
    for query, rows in cases:
        _same(ask(store, query), _expected(rows))


def test_interactions_have_their_types(store: str) -> None:
    from backbeat.sinks.registry import open_reader

    reader = open_reader(store)
    try:
        for query in (q.Interactions(), q.Interactions(users=())):
            schema = reader.run(query).schema
            assert {f.name: f.type for f in schema} == TYPES
            assert schema.names[:2] == list(KEY)
    finally:
        reader.close()


def test_batch_ranges_add_up(store: str) -> None:
    last = max(r["b"] for r in store_sql(store, "SELECT max(batch_id) AS b FROM listens"))
    whole = ask(store, q.Interactions(batches=(0, last)))
    for k in (1, last // 2, last - 1):
        merged: dict[tuple[int, str], Row] = {}
        parts = ask(store, q.Interactions(batches=(0, k))) + ask(
            store, q.Interactions(batches=(k, last))
        )
        for row in parts:
            key = (row["user_id"], row["track"])
            if key not in merged:
                merged[key] = dict(row)
                continue
            seen = merged[key]
            if row["last_ts"] >= seen["last_ts"]:  # the later listen's values
                seen.update({c: row[c] for c in ("track_id", "artist", "song", "genre", "country")})
            seen["plays"] += row["plays"]
            seen["weight"] += row["weight"]
            seen["first_ts"] = min(seen["first_ts"], row["first_ts"])
            seen["last_ts"] = max(seen["last_ts"], row["last_ts"])
        _same([merged[key] for key in sorted(merged)], whole)


def test_user_listens_are_one_users_newest_first(events: Path, store: str) -> None:
    listens = _listens(events, store)
    user = max({r["userId"] for r in listens}, key=lambda u: sum(r["userId"] == u for r in listens))
    own = sorted((r for r in listens if r["userId"] == user), key=_newest, reverse=True)
    assert len(own) > 5
    want = [
        {
            "ts": r["ts"], "track": _track(r), "track_id": r.get("trackId"),
            "artist": r["artist"], "song": r["song"], "genre": r.get("genre"),
            "listen_pct": r.get("listenPct"), "completed": r.get("completed"),
            "skipped": r.get("skipped"),
        }
        for r in own
    ]  # fmt: skip
    assert ask(store, q.UserListens(user=user, limit=5)) == want[:5]
    assert ask(store, q.UserListens(user=user, limit=500)) == want
    assert ask(store, q.UserListens(user=999_999)) == []


def test_stores_answer_them_and_never_the_recommenders_queries() -> None:
    answered = {q.name_of(kind) for kind in HANDLERS}
    assert {"interactions", "user-listens"} <= answered
    assert not answered & q.RECOMMENDER
