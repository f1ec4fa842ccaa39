"""The MongoDB sink and reader against the embedded store, end to end: ``backbeat stream``
writes a DuckDB store and ``--sink mongo`` from the same log, is killed after a commit and
restarted (the sink applies the last committed batch again), and then every ranking and genre
window MongoDB answers, through the reader, the API and ``backbeat query``, must equal the
DuckDB store's: nothing lost, nothing doubled, same columns, types, order and tie-breaks.

Next: ``test_suite.py`` (every crash of the sink contract), ``backbeat/sinks/mongo``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from backbeat.commands import app as cli
from backbeat.errors import ConfigError, StoreError
from backbeat.serve.app import create_app
from backbeat.serve.hub import CommitHub, latest_batch
from backbeat.sinks import queries as q
from backbeat.sinks.base import SinkSpec
from backbeat.sinks.registry import open_reader, open_sinks
from tests.support.eventlog import Trouble, generate, write_log
from tests.support.harness import STREAM_CLI
from tests.support.malformed import STANDARD
from tests.support.mongo import database_url
from tests.support.sockets import free_port

BATCH = 100
TROUBLE = Trouble(exact_dups=4, key_dups=4, late=3, late_allowed=4, late_dups=2,
                  malformed=len(STANDARD))  # fmt: skip
AGAIN = re.compile(r"applied batch (\d+) again")


@dataclass(frozen=True)
class Streamed:
    store: Path
    url: str
    input: Path
    replayed: int
    """The batch the restarted run applied again."""


def _stream(log: Path, store: Path, url: str) -> list[str]:
    head, rest = STREAM_CLI[:-2], STREAM_CLI[-2:]
    return [*head, "--log-level", "INFO", *rest, "--input", str(log), "--store", str(store),
            "--batch-size", str(BATCH), "--sink", "mongo", "--sink-option", f"mongo.url={url}"]  # fmt: skip


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}


@pytest.fixture(scope="module")
def streamed(tmp_path_factory: pytest.TempPathFactory, mongo_server: str) -> Streamed:
    root = tmp_path_factory.mktemp("mongo")
    log = write_log(root / "in", generate(16, 24, seed=31), seed=32, trouble=TROUBLE)
    store, url = root / "store", database_url(mongo_server)
    command = _stream(log.directory, store, url)
    first = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             text=True, env=_env())  # fmt: skip
    assert first.stderr is not None
    seen = []
    for line in first.stderr:
        seen.append(line)
        if "committed batch 3:" in line:
            first.kill()  # SIGKILL: no settle, the sink's last mark stays committed
            break
    first.wait(timeout=60)
    first.stderr.close()
    assert first.returncode == -9, "the run ended before batch 3:\n" + "".join(seen[-5:])
    second = subprocess.run(command, capture_output=True, text=True, env=_env(),
                            timeout=300, check=False)  # fmt: skip
    assert second.returncode == 0, second.stderr[-3000:]
    assert json.loads(second.stdout.splitlines()[-1])["stopped_by"] == "exhausted"
    again = AGAIN.search(second.stderr)
    assert again, "the restart did not apply the last committed batch again"
    return Streamed(store, url, log.directory, int(again.group(1)))


@pytest.fixture(scope="module")
def readers(streamed: Streamed) -> Iterator[tuple[q.Reader, q.Reader]]:
    duck, mongo = open_reader(str(streamed.store)), open_reader(streamed.url)
    yield duck, mongo
    duck.close()
    mongo.close()


def _windows(duck: q.Reader) -> list[int]:
    starts = duck.run(q.GenreWindows(limit=100_000)).column("window_start").to_pylist()
    return sorted({int(t.timestamp() * 1000) for t in starts})


def _queries(windows: list[int]) -> list[q.Query]:
    middle = q.TimeRange(start=windows[3], end=windows[-4])
    spans = [q.EVERYTHING, q.TimeRange(last=10 * 60_000), middle, q.TimeRange(start=windows[5])]
    return [
        *(kind(span=span, limit=limit) for span in spans for kind in (q.TopSongs, q.TopArtists)
          for limit in (7, 100_000)),
        *(q.GenreWindows(span=span) for span in spans),
        q.GenreWindows(limit=5),
    ]  # fmt: skip


@pytest.mark.integration
def test_rankings_and_genre_windows_equal_the_duckdb_stores_after_a_replay(
    streamed: Streamed, readers: tuple[q.Reader, q.Reader]
) -> None:
    duck, mongo = readers
    windows = _windows(duck)
    assert len(windows) >= 20
    assert streamed.replayed >= 3
    for query in _queries(windows):
        want, got = duck.run(query), mongo.run(query)
        assert got.schema == want.schema, query
        assert got.num_rows, query
        assert got.to_pylist() == want.to_pylist(), query
    plays = mongo.run(q.TopArtists(limit=100_000)).column("plays").to_pylist()
    assert sum(plays) == sum(duck.run(q.Levels()).column("listens").to_pylist())


@pytest.mark.integration
def test_filtered_rankings_and_other_queries_are_refused_in_one_line(
    readers: tuple[q.Reader, q.Reader],
) -> None:
    _, mongo = readers
    assert mongo.answers() == {"top-songs", "top-artists", "genre-windows"}
    for query in (q.TopSongs(keep=q.ListenFilter(genre="pop")), q.Engagement(), q.Summary()):
        with pytest.raises(Exception, match="does not answer") as caught:
            mongo.run(query)
        assert "\n" not in str(caught.value)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _client(reader: q.Reader) -> TestClient:
    return TestClient(create_app(reader, CommitHub(latest_batch(reader))))


@pytest.mark.integration
def test_the_apis_ranked_routes_served_from_mongodb_equal_the_duckdb_stores(
    readers: tuple[q.Reader, q.Reader],
) -> None:
    duck, mongo = readers
    windows = _windows(duck)
    frm, to = (_iso(t) for t in (windows[2], windows[-3]))
    routes = ["/api/top-songs?window=all&limit=15", "/api/top-songs?window=10m",
              "/api/top-artists?window=all&limit=100", "/api/top-artists",
              "/api/genres/windows", f"/api/genres/windows?from={frm}&to={to}"]  # fmt: skip
    with _client(duck) as want, _client(mongo) as got:
        for route in routes:
            answer, expected = got.get(route), want.get(route)
            assert answer.status_code == expected.status_code == 200, (route, answer.text)
            assert answer.json() == expected.json(), route
        for route in ("/api/engagement", "/api/top-songs?genre=pop"):
            answer = got.get(route)
            assert answer.status_code == 501, (route, answer.text)
            assert "does not answer" in answer.json()["error"]
            assert "\n" not in answer.json()["error"]


@pytest.mark.integration
def test_backbeat_query_reads_mongodb_and_stream_refuses_it_in_one_line(
    streamed: Streamed,
) -> None:
    runner = CliRunner()
    got = runner.invoke(cli, ["--json", "query", "top-songs", "--store", streamed.url])
    want = runner.invoke(cli, ["--json", "query", "top-songs", "--store", str(streamed.store)])
    assert got.exit_code == want.exit_code == 0, got.output
    assert json.loads(got.stdout) == json.loads(want.stdout)
    refused = runner.invoke(
        cli, ["stream", "--input", str(streamed.input), "--store", streamed.url]
    )
    assert refused.exit_code == 1
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1, refused.output
    assert "mongodb://" in lines[0], refused.output


def test_a_server_that_does_not_answer_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pymongo", reason="the mongo extra (pymongo) is missing")
    monkeypatch.setattr("backbeat.sinks.mongo.layout.TIMEOUT_MS", 200)
    with pytest.raises(StoreError, match=r"MongoDB at mongodb://127\.0\.0\.1") as caught:
        open_reader(f"mongodb://127.0.0.1:{free_port()}/nothing")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "env", "error"),
    [
        ({}, {}, "needs a server"),
        ({"url": "http://x"}, {}, "not a MongoDB URL"),
        ({"url": "mongodb://h/db", "batch": "3"}, {}, "no option batch"),
        ({"url": "mongodb://u:secret@h/db"}, {}, "password in the URL"),
        ({}, {"BACKBEAT_MONGO_URL": "mongodb://h:1/fromenv"}, None),
    ],
)
def test_the_sinks_options(
    monkeypatch: pytest.MonkeyPatch, options: dict[str, str], env: dict[str, str],
    error: str | None,
) -> None:  # fmt: skip
    pytest.importorskip("pymongo", reason="the mongo extra (pymongo) is missing")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = SinkSpec("mongo", options=options)
    if error is not None:
        with pytest.raises(ConfigError, match=error):
            open_sinks([spec])
        return
    sink = open_sinks([spec])[0]
    try:
        assert sink.key == "mongo:h:1/fromenv"
    finally:
        sink.close()


def test_the_default_database_is_backbeat() -> None:
    pytest.importorskip("pymongo", reason="the mongo extra (pymongo) is missing")
    specs = [SinkSpec("mongo", options={"url": "mongodb://h:2"}),
             SinkSpec("mongo", options={"url": "mongodb://h:2/a", "database": "b"})]  # fmt: skip
    keys = []
    for spec in specs:
        sink = open_sinks([spec])[0]
        keys.append(sink.key)
        sink.close()
    assert keys == ["mongo:h:2/backbeat", "mongo:h:2/b"]
