"""The live push over a real socket: uvicorn on a free port, a pipeline committing batches in
another thread, and SSE clients reading ``/api/stream`` as a browser would.

Every client gets one update at connect, then one per commit (batches committed while it
was busy are folded into the next update), with batch ids strictly increasing up to the last
commit; the events an update carries are exactly the newest (at most 50) matching rows of the
batches it covers, read back from the store with plain SQL, and each one passes the client's
filters.

Next: ``test_api.py`` (the REST routes), ``backbeat.serve.hub`` (who wakes the streams).
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from backbeat.engine.base import EngineSettings, RunReport
from backbeat.engine.pipeline import Pipeline
from backbeat.serve.app import WebServer, create_app
from backbeat.serve.hub import CommitHub, latest_batch
from backbeat.simulate.simulator import SimulatorSettings
from backbeat.sinks.base import BatchStats
from backbeat.sinks.duckdb.store import DuckDBStore
from backbeat.transport.jsonl import JsonlSource, discover
from backbeat.wiring import write_jsonl_run
from tests.serve.conftest import START

FILTERED = {"platform": "android", "skipped": "false"}


@dataclass
class Client:
    """Reads one ``/api/stream`` in a thread until it has seen batch ``until`` (set later)."""

    url: str
    updates: list[dict[str, Any]] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    until: int | None = None
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            with urllib.request.urlopen(self.url, timeout=30) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                kind = None
                for raw in response:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        kind = line.removeprefix("event: ")
                    elif line.startswith("data: ") and kind == "update":
                        self.updates.append(json.loads(line.removeprefix("data: ")))
                        self.connected.set()
                        if self.until is not None and self.updates[-1]["batch_id"] >= self.until:
                            return
        except BaseException as exc:  # reported by the test
            self.error = exc
            self.connected.set()


@dataclass
class Live:
    store: DuckDBStore
    web: WebServer
    hub: CommitHub
    events: Path


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    events = tmp_path / "events"
    write_jsonl_run(
        SimulatorSettings(users=400, seed=5, start=START, end=START + timedelta(hours=2)),
        events,
        progress=False,
    )
    store = DuckDBStore.at(str(tmp_path / "store"))
    reader = store.reader()
    hub = CommitHub(latest_batch(reader))
    web = WebServer(create_app(reader, hub), "127.0.0.1", 0)
    web.start()
    yield Live(store, web, hub, events)
    web.stop()
    store.close()


def _run_pipeline(live: Live) -> RunReport:
    def publish(stats: BatchStats, _: RunReport) -> None:
        live.hub.publish(stats.batch_id)

    return Pipeline(
        JsonlSource(discover([live.events])),
        live.store,
        settings=EngineSettings(max_future_ms=None, max_batch_events=200),
        on_batch=publish,
    ).run()


def _stored(live: Live, after: int, upto: int, where: str) -> list[dict[str, Any]]:
    """The newest 50 listens committed by batches ``after < id <= upto`` (plain SQL)."""
    cursor = duckdb.connect(str(live.store.path))  # this process's instance of the open file
    rel = cursor.execute(
        "SELECT ts, artist, song, genre, platform, skipped FROM listens "
        f"WHERE batch_id > ? AND batch_id <= ? {where} ORDER BY ts DESC, session_id, item LIMIT 50",
        [after, upto],
    )
    names = [d[0] for d in rel.description]
    return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]


def _shown(update: dict[str, Any]) -> list[dict[str, Any]]:
    keys = ("artist", "song", "genre", "platform", "skipped")
    return [
        {"ts": int(datetime.fromisoformat(e["ts"]).timestamp() * 1000)} | {k: e[k] for k in keys}
        for e in update["events"]
    ]


def test_every_commit_reaches_every_client_with_its_matching_events(live: Live) -> None:
    everything = Client(f"{live.web.url}api/stream")
    filtered = Client(
        f"{live.web.url}api/stream?" + "&".join(f"{k}={v}" for k, v in FILTERED.items())
    )
    for client in (everything, filtered):
        assert client.connected.wait(10), "no update at connect"
        assert client.error is None, client.error

    report = _run_pipeline(live)
    last = live.hub.version
    assert report.batches >= 10
    assert last == report.batches
    for client in (everything, filtered):
        client.until = last
    live.hub.publish(last)  # a no-op version-wise; the clients are already on their way
    for client in (everything, filtered):
        client.thread.join(30)
        assert not client.thread.is_alive()
        assert client.error is None, client.error

    for client, where in (
        (everything, ""),
        (filtered, "AND platform = 'android' AND NOT skipped"),
    ):
        ids = [u["batch_id"] for u in client.updates]
        assert ids[0] == 0  # the empty store at connect
        assert client.updates[0]["events"] == []
        assert ids == sorted(set(ids)), ids
        assert ids[-1] == last
        assert len(ids) > 2  # pushed as batches were committed, not once at the end
        for before, update in zip(client.updates, client.updates[1:], strict=False):
            expected = _stored(live, before["batch_id"], update["batch_id"], where)
            assert _shown(update) == expected
            assert update["summary"]["batch_id"] == update["batch_id"]
        assert client.updates[-1]["summary"]["events_total"] == report.events_in

    shown = [e for u in filtered.updates for e in u["events"]]
    assert shown
    assert all(e["platform"] == "android" and not e["skipped"] for e in shown)
