"""A store filled by the engine from a simulated JSONL run, the API over it, and an oracle.

The oracle reads the same JSONL files with DuckDB's own JSON reader (never the engine or
``backbeat.serve``), so every figure the API returns can be checked against a plain query.
The simulated run is clean (no duplicates, nothing late), so the oracle needs no de-dup.
``Recommending`` stands in for the recommender (``backbeat.recommend``) over that store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backbeat.engine.base import EngineSettings
from backbeat.engine.pipeline import Pipeline
from backbeat.errors import NotFoundError, StoreNotReadyError
from backbeat.recommend.rank import REASONS as REASON_NAMES
from backbeat.serve.app import create_app
from backbeat.serve.hub import CommitHub, latest_batch
from backbeat.simulate.simulator import SimulatorSettings
from backbeat.sinks import queries as q
from backbeat.sinks.duckdb.store import DuckDBStore
from backbeat.sinks.queries import Reader
from backbeat.transport.jsonl import JsonlSource, discover
from backbeat.wiring import write_jsonl_run

START = datetime(2026, 3, 2, 22, tzinfo=UTC)
RANKED = frozenset({"top-songs", "top-artists", "genre-windows"})
"""What a store of aggregates only answers (the MongoDB reader): no raw listens, no filter."""
TRAINED_AT = 1_772_500_000_000
KNOWN = ("spotify:track:abc", "ac/dc\x1fback in black", "t1")
"""Tracks the in-test recommender knows (a key may hold a slash or a unit separator)."""
REASONS = REASON_NAMES  # what the recommender gives


class Restricted(Reader):
    """A real store's reader that says it answers only ``only`` (and, with no ``events``
    among them, no listen filter: ``Reader.filters``' default). It refuses other queries,
    but runs filtered ones (its store can): a 501 for a filter must come from the serve
    layer asking ``filters()`` first, never from the store."""

    def __init__(self, inner: Reader, only: frozenset[str] = RANKED) -> None:
        self._inner = inner
        self._only = only

    def answers(self) -> frozenset[str]:
        return self._only & self._inner.answers()

    def run(self, query: q.Query) -> pa.Table:
        if q.name_of(query) not in self._only:
            raise self.refuse(query)
        return self._inner.run(query)


class Recommending(q.Reader):
    """A store's reader plus the recommender's queries (and ``user-listens``), answered from
    made-up rows; ``version`` None: no model yet."""

    def __init__(self, inner: q.Reader) -> None:
        self._inner = inner
        self.version: int | None = 1
        self.silent: set[int] = set()  # listeners with nothing to recommend

    def answers(self) -> frozenset[str]:
        return self._inner.answers() | q.RECOMMENDER | {q.name_of(q.UserListens)}

    def run(self, query: q.Query) -> pa.Table:
        if isinstance(query, q.UserListens):
            return _listens(query.limit)
        if not isinstance(query, q.Recommendations | q.SimilarTracks | q.ModelInfo):
            return self._inner.run(query)
        if self.version is None and isinstance(query, q.ModelInfo):
            return pa.table({"model_version": pa.array([], pa.int64())})  # as the real one
        if self.version is None:
            raise StoreNotReadyError("no recommendation model yet: run backbeat recommend train")
        if isinstance(query, q.ModelInfo):
            return pa.table({"model_version": [self.version], "trained_at": [TRAINED_AT],
                             "through_batch": [7], "users": [300], "tracks": [900],
                             "updates": [3]})  # fmt: skip
        if isinstance(query, q.SimilarTracks):
            if query.track not in KNOWN:
                raise NotFoundError(f"no track {query.track!r}: not in the catalog or history")
            return self._picks(query.limit, "similar sound")
        return self._picks(0 if query.user in self.silent else query.limit)

    def _picks(self, n: int, reason: str | None = None) -> pa.Table:
        assert self.version is not None
        return pa.table({
            "rank": pa.array(range(1, n + 1), pa.int32()),
            "track": [f"t{i}" for i in range(n)],
            "track_id": [None if i % 2 else f"spotify:track:{i}" for i in range(n)],
            "artist": [f"artist {i}" for i in range(n)],
            "song": [f"song {i}" for i in range(n)],
            "genre": pa.array([None if i == 1 else "rock" for i in range(n)], pa.string()),
            "score": [1.0 - i / 100 for i in range(n)],
            "reason": [reason or REASONS[i % len(REASONS)] for i in range(n)],
            "model_version": pa.array([self.version] * n, pa.int64()),
            "trained_at": pa.array([TRAINED_AT] * n, pa.int64()),
            "through_batch": pa.array([7] * n, pa.int64()),
        })  # fmt: skip


def _listens(n: int) -> pa.Table:
    return pa.table({
        "ts": pa.array([TRAINED_AT - i * 60_000 for i in range(n)], pa.int64()),
        "track": [f"t{i}" for i in range(n)],
        "track_id": pa.array([None] * n, pa.string()),
        "artist": [f"artist {i}" for i in range(n)],
        "song": [f"song {i}" for i in range(n)],
        "genre": ["pop"] * n,
        "listen_pct": pa.array([0.5] * n, pa.float64()),
        "completed": pa.array([None] * n, pa.bool_()),
        "skipped": [i % 3 == 0 for i in range(n)],
    })  # fmt: skip


@dataclass
class Served:
    store: DuckDBStore
    store_reader: Reader
    hub: CommitHub
    app: FastAPI
    oracle: duckdb.DuckDBPyConnection
    events: Path

    def expect(self, sql: str, *params: object) -> list[dict[str, Any]]:
        rel = self.oracle.execute(sql, list(params))
        names = [d[0] for d in rel.description]
        return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("served")
    events = root / "events"
    settings = SimulatorSettings(users=400, seed=11, start=START, end=START + timedelta(hours=3))
    write_jsonl_run(settings, events, progress=False)
    store = DuckDBStore.at(str(root / "store"))
    report = Pipeline(
        JsonlSource(discover([events])), store, settings=EngineSettings(max_future_ms=None)
    ).run()
    assert report.dead == 0
    assert report.duplicates == 0
    assert report.late == 0
    reader = store.reader()
    hub = CommitHub(latest_batch(reader))
    oracle = duckdb.connect()
    for topic in ("listen_events", "page_view_events", "auth_events"):
        oracle.execute(
            f"CREATE VIEW {topic} AS SELECT * FROM "
            f"read_json_auto('{events / topic}.jsonl', format='newline_delimited')"
        )
    oracle.execute(  # the minute of the latest event of any topic
        "CREATE VIEW latest AS SELECT max(ts) // 60000 * 60000 AS m FROM "
        f"read_json_auto('{events}/*.jsonl', format='newline_delimited', union_by_name=true)"
    )
    yield Served(store, reader, hub, create_app(reader, hub), oracle, events)
    oracle.close()
    store.close()


@pytest.fixture(scope="session")
def idle_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small store that no process holds open, for ``backbeat serve`` in a subprocess."""
    root = tmp_path_factory.mktemp("idle")
    settings = SimulatorSettings(users=100, seed=5, start=START, end=START + timedelta(hours=1))
    write_jsonl_run(settings, root / "events", progress=False)
    store = DuckDBStore.at(str(root / "store"))
    try:
        source = JsonlSource(discover([root / "events"]))
        Pipeline(source, store, settings=EngineSettings(max_future_ms=None)).run()
    finally:
        store.close()
    return root / "store"


@pytest.fixture(scope="session")
def client(served: Served) -> Iterator[TestClient]:
    with TestClient(served.app) as client:
        yield client
