"""A store filled by the engine from a simulated JSONL run, the API over it, and an oracle.

The oracle reads the same JSONL files with DuckDB's own JSON reader (never the engine or
``backbeat.serve``), so every figure the API returns can be checked against a plain query.
The simulated run is clean (no duplicates, nothing late), so the oracle needs no de-dup.
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
