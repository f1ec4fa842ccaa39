"""The PostgreSQL store against the embedded one: the same events give the same answers on
every named query, every API route and every ``backbeat query``; its schema is migrated once
however many members start together; its password never shows.

One log with duplicates, late events and malformed records is streamed by the engine into a
DuckDB store and into a PostgreSQL database (a real server the suite starts, or
``BACKBEAT_TEST_POSTGRES``), in batches small enough that the PostgreSQL store compacts its
partial rows several times. Only wall-clock figures (events/s of the last 10 s, commit ages
and latencies) may differ.

Next: ``tests/engine/test_kill9.py`` (kill -9, both stores), ``support/postgres.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backbeat.engine.base import EngineSettings
from backbeat.engine.pipeline import Pipeline
from backbeat.serve.app import create_app
from backbeat.serve.hub import CommitHub, latest_batch
from backbeat.sinks import queries as q
from backbeat.sinks.base import Store
from backbeat.sinks.duckdb.store import DuckDBStore
from backbeat.sinks.registry import open_reader
from backbeat.transport.jsonl import JsonlSource, discover
from tests.support.eventlog import Trouble, generate, write_log
from tests.support.malformed import STANDARD

pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is missing")

from backbeat.sinks.postgres import schema
from backbeat.sinks.postgres.store import PostgresStore

BATCH = 2_500
WALL_CLOCK = {"events_per_second", "last_commit_age_s", "batch_seconds", "received_at"}
"""Figures of when batches were committed, not of the events."""


@dataclass(frozen=True)
class Pair:
    duckdb: str
    postgres: str
    events: Path


def _stream(events: Path, store: Store) -> None:
    try:
        Pipeline(
            JsonlSource(discover([events])),
            store,
            settings=EngineSettings(max_batch_events=BATCH, max_future_ms=None),
        ).run()
    finally:
        store.close()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, postgres_server: Any) -> Pair:
    from tests.support.postgres import fresh_database

    root = tmp_path_factory.mktemp("pg-pair")
    trouble = Trouble(
        exact_dups=60, key_dups=60, late=20, late_allowed=40, malformed=40, categories=STANDARD
    )
    log = write_log(root / "events", generate(900, 90, seed=91), seed=92, trouble=trouble)
    url = fresh_database(postgres_server)
    _stream(log.directory, DuckDBStore.at(str(root / "duck")))
    _stream(log.directory, PostgresStore(url, compact_every=4))
    return Pair(str(root / "duck"), url, log.directory)


def _spans() -> list[q.TimeRange]:
    return [q.EVERYTHING, q.TimeRange(last=1_800_000), q.TimeRange(start=0, end=2**41)]


def _queries(values: list[dict[str, Any]]) -> Iterator[q.Query]:
    genre = next(v["value"] for v in values if v["dimension"] == "genre")
    keeps = [
        q.ANY,
        q.ListenFilter(genre=genre),
        q.ListenFilter(artist="a", min_rating=2.5),
        q.ListenFilter(skipped=True, level="paid"),
    ]
    for span in _spans():
        for keep in keeps:
            yield q.TopSongs(span=span, keep=keep, limit=25)
            yield q.TopArtists(span=span, keep=keep, limit=25)
            for by in q.SKIPPED_BY:
                yield q.TopSkipped(span=span, keep=keep, by=by, min_plays=3, limit=1000)
        yield q.GenreWindows(span=span)
        for by in ("genre", "platform", "country", "mood"):
            yield q.Engagement(span=span, by=by)
        for kind in (q.ActiveUsers, q.Pages, q.States, q.Levels, q.LevelChanges, q.Genders,
                     q.AuthMinutes, q.ListeningTime):  # fmt: skip
            yield kind(span=span)
    for keep in keeps:
        yield q.Events(keep=keep, limit=500)
    yield q.Events(batches=(2, 6))
    for kind in (q.HourlyPlays, q.LatestTime, q.Summary, q.BatchTotals, q.LatestBatch,
                 q.FilterValues, q.DeadLetterCounts):  # fmt: skip
        yield kind()
    yield q.DeadLetters(limit=1000)
    yield q.Interactions()
    yield q.Interactions(span=q.TimeRange(start=1_700_000_600_000), batches=(2, 6))
    yield q.Interactions(users=tuple(range(1000, 1400, 3)))
    for user in range(1000, 1010):
        yield q.UserListens(user=user, limit=500)
    yield q.DeadLetterRecords(after=0, upto=1000)
    for name in ("genre_minute", "song_minute", "engagement_minute", "user_minute",
                 "session_minute", "level_change_minute", "auth_minute", "page_minute"):  # fmt: skip
        yield q.MetricRows(name=name)


def _comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without wall-clock figures; sums of fractions (``weight``) to 9 places, as the
    engines add them in different orders."""
    return [
        {k: round(v, 9) if k == "weight" else v for k, v in r.items() if k not in WALL_CLOCK}
        for r in rows
    ]


def test_every_named_query_answers_the_same(pair: Pair) -> None:
    duck, pg = open_reader(pair.duckdb), open_reader(pair.postgres)
    try:
        assert duck.answers() == pg.answers()
        values = duck.run(q.FilterValues()).to_pylist()
        asked = list(_queries(values))
        assert {q.name_of(query) for query in asked} == duck.answers()
        differ = []
        for query in asked:
            want = _comparable(duck.run(query).to_pylist())
            got = _comparable(pg.run(query).to_pylist())
            if got != want:
                differ.append(f"{query}: duckdb {want[:2]} ... postgresql {got[:2]} ...")
        assert not differ, "\n".join(differ)
        assert duck.one(q.BatchTotals())["dead"] > 0, "the log has no dead letters to compare"
        assert pg.one(q.BatchTotals())["batches"] > 8, "too few batches to compact"
    finally:
        duck.close()
        pg.close()


def _api_paths(client: TestClient, filters: dict[str, list[str]]) -> Iterator[str]:
    """Every GET route the store answers (the recommender's need a recommender) with its
    parameter variants (the SSE stream aside); ``{user_id}``: the latest listener."""
    genre = filters["genre"][0]
    answered = set(client.get("/api/capabilities").json()["routes"])
    user = client.get("/api/events?limit=1").json()["items"][0]["user_id"]
    variants: dict[str | tuple[str, str], list[str]] = {
        ("/api/top-skipped", "by"): ["song", "artist"],
        "min_plays": ["1", "3"],
        "window": ["all", "30m", "24h"],
        "by": ["genre", "platform", "mood"],
        "genre": [genre],
        "artist": ["e"],
        "min_rating": ["3"],
        "skipped": ["false"],
    }
    for route, ops in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        if route in ("/api/stream", "/metrics", "/health") or "get" not in ops:
            continue
        if route.startswith("/api/") and route not in answered:
            continue
        path = route.replace("{user_id}", str(user))
        yield path
        for param in (p["name"] for p in ops["get"].get("parameters", [])):
            for value in variants.get((route, param), variants.get(param, [])):
                yield f"{path}?{param}={value}"


def _without_wall_clock(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: _without_wall_clock(v) for k, v in body.items() if k not in WALL_CLOCK}
    if isinstance(body, list):
        return [_without_wall_clock(v) for v in body]
    return body


def test_every_api_route_answers_the_same(pair: Pair) -> None:
    duck, pg = open_reader(pair.duckdb), open_reader(pair.postgres)
    try:
        with (
            TestClient(create_app(duck, CommitHub(latest_batch(duck)))) as a,
            TestClient(create_app(pg, CommitHub(latest_batch(pg)))) as b,
        ):
            filters = a.get("/api/filters").json()
            paths = list(_api_paths(a, filters))
            assert len(paths) > 30
            differ = []
            for path in paths:
                want, got = a.get(path), b.get(path)
                assert want.status_code == 200, f"{path}: {want.text}"
                if _without_wall_clock(got.json()) != _without_wall_clock(want.json()):
                    differ.append(f"{path}: {want.text[:200]} != {got.text[:200]}")
            assert not differ, "\n".join(differ)
    finally:
        duck.close()
        pg.close()


def _query_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backbeat", "--json", "query", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_backbeat_query_answers_the_same(pair: Pair) -> None:
    from typer.testing import CliRunner

    from backbeat.commands import app
    from backbeat.commands.query import QueryName

    runner = CliRunner()
    for name in QueryName:
        if name is QueryName.WAREHOUSE:  # the Iceberg warehouse's, not a store's
            continue
        for extra in ([], ["--from", "2020-01-01T00:00:00Z", "--limit", "5"]):
            if name is QueryName.DEAD_LETTERS and extra:
                extra = ["--limit", "5"]
            asked = ["--json", "query", name.value, *extra, "--store"]
            want = runner.invoke(app, [*asked, pair.duckdb])
            got = runner.invoke(app, [*asked, pair.postgres])
            assert want.exit_code == 0, want.output
            assert got.exit_code == 0, got.output
            assert _without_wall_clock(json.loads(got.stdout)) == _without_wall_clock(
                json.loads(want.stdout)
            ), name


def test_members_starting_together_migrate_once(postgres_url: str) -> None:
    """Eight writers open a new database at once: one creates the schema, none fails."""
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def member() -> None:
        try:
            start.wait()
            PostgresStore(postgres_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=member) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    import psycopg

    with psycopg.connect(postgres_url) as con:
        assert con.execute("SELECT version FROM meta_schema").fetchall() == [(schema.VERSION,)]


def test_the_password_never_shows(postgres_server: Any, tmp_path: Path) -> None:
    """On the command line it is refused (``ps`` would show it); from PGPASSWORD or
    ~/.pgpass it works; a wrong one fails in one line that does not repeat it."""
    from tests.support.postgres import password_url

    url, password = password_url(postgres_server)
    assert password not in url
    user, at, rest = url.partition("://")[2].partition("@")
    with_password = f"postgresql://{user}:{password}{at}{rest}"
    refused = _query_cli("top-songs", "--store", with_password)
    assert refused.returncode == 1
    assert password not in refused.stderr + refused.stdout
    assert "process listing" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKBEAT_", "PG"))}
    wrong = _query_cli("top-songs", "--store", url, env={**env, "PGPASSWORD": "not-it"})
    assert wrong.returncode == 1
    assert "not-it" not in wrong.stderr
    assert "password authentication failed" in wrong.stderr, wrong.stderr

    PostgresStore(with_password).close()  # a new database: migrated, so readable
    from_env = _query_cli("top-songs", "--store", url, env={**env, "PGPASSWORD": password})
    assert from_env.returncode == 0, from_env.stderr
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"*:*:*:*:{password}\n")
    pgpass.chmod(0o600)
    from_file = _query_cli("top-songs", "--store", url, env={**env, "PGPASSFILE": str(pgpass)})
    assert from_file.returncode == 0, from_file.stderr
    whole = _query_cli("top-songs", env={**env, "BACKBEAT_STORE": with_password})
    assert whole.returncode == 0, whole.stderr


def test_a_newer_or_missing_schema_is_one_line(postgres_url: str) -> None:
    """An empty database is "no results yet" to a reader; one a newer backbeat migrated is
    refused by writers and readers alike, in one line."""
    import psycopg

    from backbeat.errors import StoreError, StoreNotReadyError

    with pytest.raises(StoreNotReadyError, match="holds no results yet"):
        open_reader(postgres_url)
    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("UPDATE meta_schema SET version = 99")
    with pytest.raises(StoreError, match="newer backbeat") as refused:
        PostgresStore(postgres_url)
    assert "\n" not in str(refused.value)
    with pytest.raises(StoreError, match="newer backbeat"):
        open_reader(postgres_url)


def test_a_version_2_database_gets_what_song_listens_said_from_its_listens(
    postgres_url: str, tmp_path: Path
) -> None:
    """Migration 3 adds skips, completions and % listened to ``song_minute`` and fills them
    from the kept listens: the merged rows equal those the engine wrote."""
    import psycopg

    from backbeat.analytics.metrics import SONG_SAYS

    log = write_log(tmp_path / "events", generate(60, 10, seed=93), seed=94)
    _stream(log.directory, PostgresStore(postgres_url, compact_every=3))
    reader = open_reader(postgres_url)
    try:
        want = reader.run(q.MetricRows(name="song_minute")).to_pylist()
    finally:
        reader.close()
    assert sum(r["skipped"] for r in want) > 0
    with psycopg.connect(postgres_url, autocommit=True) as con:
        for column in SONG_SAYS:
            con.execute(f"ALTER TABLE m_song_minute DROP COLUMN {column}".encode())
        con.execute("UPDATE meta_schema SET version = 2")
    PostgresStore(postgres_url).close()  # migrates
    reader = open_reader(postgres_url)
    try:
        assert reader.run(q.MetricRows(name="song_minute")).to_pylist() == want
    finally:
        reader.close()
