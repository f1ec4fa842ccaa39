"""``backbeat serve`` on a PostgreSQL store before its first commit (Compose and Kubernetes
start it beside a new stream): it serves at once, ``/health`` ok with ``batch_id`` null and
every API answer empty, then the store's results as soon as a stream commits, in the same
process; ``backbeat query`` on the same empty store still refuses in one line.

A real PostgreSQL server (``postgres_url``: a fresh database of this test's own).

Next: ``backbeat/sinks/pending.py`` (the reader), ``tests/deploy/test_stack.py`` (the stack
started in that order).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from backbeat.commands import app as cli
from backbeat.engine.base import EngineSettings
from backbeat.engine.pipeline import Pipeline
from backbeat.serve.app import create_app
from backbeat.serve.hub import CommitHub, StoreWatcher, latest_batch
from backbeat.sinks.pending import PendingReader
from backbeat.sinks.registry import open_reader
from backbeat.transport.jsonl import JsonlSource, discover
from tests.support.eventlog import generate, write_log

pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is missing")

from backbeat.sinks.postgres.store import PostgresStore

pytestmark = pytest.mark.integration

ROUTES = ("/api/top-songs", "/api/top-artists", "/api/summary", "/api/engagement?by=platform",
          "/api/levels", "/api/pages", "/api/events", "/api/dead-letters")  # fmt: skip
DEADLINE_S = 30.0


def _stream(events: Path, url: str) -> None:
    store = PostgresStore(url)
    try:
        Pipeline(
            JsonlSource(discover([events])),
            store,
            settings=EngineSettings(max_batch_events=1_000, max_future_ms=None),
        ).run()
    finally:
        store.close()


def test_serve_answers_empty_until_the_first_commit_then_the_results(
    postgres_url: str, tmp_path: Path
) -> None:
    log = write_log(tmp_path / "events", generate(120, 20, seed=5), seed=6)
    reader = open_reader(postgres_url, until_ready=True)
    assert isinstance(reader, PendingReader)
    hub = CommitHub(latest_batch(reader))
    watcher = StoreWatcher(reader, hub)
    watcher.start()
    try:
        with TestClient(create_app(reader, hub)) as client:
            health = client.get("/health")
            assert health.status_code == 200, health.text
            assert health.json() == {"status": "ok", "batch_id": None, "last_commit_age_s": None}
            assert client.get("/").status_code == 200
            for route in ROUTES:
                answer = client.get(route)
                assert answer.status_code in (200, 404), (route, answer.text)  # 404: no route
            songs = client.get("/api/top-songs")
            assert songs.status_code == 200
            assert songs.json()["items"] == []
            assert client.get("/api/summary").status_code == 200
            capabilities = client.get("/api/capabilities").json()
            assert "top-songs" in capabilities["queries"]
            assert "/api/top-songs" in capabilities["routes"]

            _stream(log.directory, postgres_url)  # another member's first commits

            seen = hub.wait_newer_blocking(0, DEADLINE_S)  # the watcher hears them
            assert seen > 0
            deadline = time.monotonic() + DEADLINE_S
            while (batch := client.get("/health").json()["batch_id"]) is None:
                assert time.monotonic() < deadline, "serve never saw the first commit"
                hub.wait_newer_blocking(seen, 0.2)
            assert batch >= seen
            assert reader.ready
            songs = client.get("/api/top-songs", params={"window": "all"})
            assert songs.status_code == 200, songs.text
            assert songs.json()["items"], "no results after the first commit"
            assert client.get("/metrics").status_code == 200
    finally:
        watcher.stop()
        reader.close()


def test_query_on_an_empty_store_is_still_one_line(postgres_url: str) -> None:
    """Only serve waits: a query on a store with no results says so, in one line."""
    done = CliRunner().invoke(cli, ["query", "top-songs", "--store", postgres_url])
    assert done.exit_code == 1
    lines = done.output.strip().splitlines()
    assert len(lines) == 1, done.output
    assert "holds no results yet" in lines[0]


def test_a_store_that_cannot_be_reached_is_refused_at_once(postgres_url: str) -> None:
    """Waiting is for a store without results, not for a wrong address."""
    from backbeat.errors import StoreError, StoreNotReadyError

    wrong = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(StoreError) as refused:
        open_reader(wrong, until_ready=True)
    assert not isinstance(refused.value, StoreNotReadyError)
