"""The web server in its own process: the same answers as in-process, live pushes after each
commit of the parent, a clear error when the port is taken, and no orphan when the parent dies.

Next: ``test_stream.py`` (the live push in one process), ``test_remote.py`` (the socket).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from backbeat.errors import ConfigError, StoreError
from backbeat.serve.app import WebServer, create_app
from backbeat.serve.hub import CommitHub
from backbeat.serve.remote import ReadService, RemoteReader
from backbeat.serve.web_process import process_server
from backbeat.sinks import queries as q
from tests.serve.conftest import Served

ROUTES = ("/api/top-songs?window=all&limit=5", "/api/summary", "/api/engagement?by=mood",
          "/api/events?platform=ios&limit=20", "/api/genres/windows")  # fmt: skip


def _settled(answer: Any) -> Any:
    """An answer without the one figure that follows the wall clock (events committed in the
    last 10 s: the fixture's commits may leave that window between two requests)."""
    if isinstance(answer, dict):
        answer.pop("events_per_second", None)
    return answer


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_remote_reader_answers_like_the_store(served: Served, tmp_path: Path) -> None:
    service = ReadService(served.store_reader, served.hub, tmp_path / "r.sock")
    service.start()
    try:
        remote = RemoteReader(tmp_path / "r.sock")
        query = q.Events(keep=q.ListenFilter(platform="web"), limit=100)
        assert remote.run(query) == served.store_reader.run(query)
        assert remote.answers() == served.store_reader.answers()
        local = TestClient(create_app(served.store_reader, served.hub))
        over_socket = TestClient(create_app(remote, CommitHub(served.hub.version)))
        for route in ROUTES:
            assert _settled(over_socket.get(route).json()) == _settled(local.get(route).json())
        remote.close()
    finally:
        service.stop()
    with pytest.raises(StoreError, match="not answering"):
        RemoteReader(tmp_path / "r.sock").run(q.LatestBatch())


class _Broken(q.Reader):
    """A store that cannot answer."""

    def answers(self) -> frozenset[str]:
        return frozenset(q.name_of(kind) for kind in q.QUERIES)

    def run(self, query: q.Query) -> pa.Table:
        raise StoreError("the store is busy")


def test_a_failing_store_is_an_error_event_and_the_server_still_stops_at_once() -> None:
    hub = CommitHub(0)
    web = WebServer(create_app(_Broken(), hub), "127.0.0.1", 0)
    web.start()
    stream = urllib.request.urlopen(f"{web.url}api/stream", timeout=10)
    lines = [stream.readline().decode().strip() for _ in range(2)]
    assert lines[0] == "event: store-error"
    assert json.loads(lines[1].removeprefix("data: ")) == {"error": "the store is busy"}
    hub.publish(1)  # the next commit is tried again, and fails the same way
    stream.readline()
    assert stream.readline().decode().strip() == "event: store-error"
    started = time.monotonic()
    web.stop()  # with the live stream still open
    assert time.monotonic() - started < 4
    stream.close()


def test_the_child_serves_and_follows_the_parents_commits(served: Served) -> None:
    web, hub = process_server(served.store_reader, "127.0.0.1", 0, None)
    web.start()
    try:
        local = TestClient(create_app(served.store_reader, served.hub))
        for route in ROUTES:
            remote = _get(f"{web.url}{route.lstrip('/')}")
            assert _settled(remote) == _settled(local.get(route).json()), route
        with urllib.request.urlopen(f"{web.url}api/stream", timeout=10) as stream:
            first = _next_update(stream)
            hub.publish(first["batch_id"] + 1)  # what the engine does after a commit
            assert _next_update(stream)["batch_id"] == first["batch_id"] + 1
    finally:
        web.stop()


def _next_update(stream: object) -> dict[str, object]:
    for raw in stream:  # type: ignore[attr-defined]
        line = raw.decode()
        if line.startswith("data: "):
            return json.loads(line.removeprefix("data: "))  # type: ignore[no-any-return]
    raise AssertionError("the stream ended")


def test_a_taken_port_is_a_clear_error(served: Served) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        web, _ = process_server(served.store_reader, "127.0.0.1", taken.getsockname()[1], None)
        with pytest.raises(ConfigError, match="port in use"):
            web.start()


def test_the_child_never_outlives_its_parent(tmp_path: Path) -> None:
    """kill -9 of the writing process: the web process notices and exits by itself."""
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from backbeat.sinks.duckdb.store import DuckDBStore
        from backbeat.serve.web_process import process_server
        if __name__ == "__main__":
            store = DuckDBStore.at({str(tmp_path / "store")!r})
            web, hub = process_server(store.reader(), "127.0.0.1", 0, None)
            web.start()
            print(web.url, web._process.pid, flush=True)
            time.sleep(600)
    """)
    (tmp_path / "parent.py").write_text(script)
    with subprocess.Popen(
        [sys.executable, str(tmp_path / "parent.py")], stdout=subprocess.PIPE
    ) as parent:
        assert parent.stdout is not None
        try:
            url, child = parent.stdout.readline().decode().split()
            assert _get(f"{url}health")["status"] == "ok"
        finally:
            parent.kill()
    deadline = time.monotonic() + 15
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{child}").exists(), "the web process outlived its parent"


def test_a_child_that_cannot_start_is_one_clear_line(tmp_path: Path) -> None:
    """spawn needs the working directory: when it is gone, the demo says so and exits 1."""
    gone = tmp_path / "gone"
    gone.mkdir()
    script = (
        "import os, sys\n"
        f"os.chdir({str(gone)!r}); os.rmdir({str(gone)!r})\n"
        "from backbeat.commands import main\n"
        f"main(['demo', '--duration', '2', '--port', '0', '--store', {str(tmp_path / 's')!r}])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=120, check=False
    )
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert "the web server process could not start" in err
    assert "Traceback" not in err
