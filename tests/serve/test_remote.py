"""The socket between the web process and the engine's: named queries only, bounded frames.

A real :class:`ReadService` over the test store is sent raw frames, as a compromised web
process could send them: free SQL in the query's name or in any field, unknown names, wrong
types, out-of-range values, unknown fields, frames announcing 4 GiB. Every one is refused
(a text value is only ever a bound parameter) and the store is unchanged afterwards. On the
reading side, an answer over ``MAX_ANSWER`` is refused unread and not asked for again.

Next: ``test_web_process.py`` (the web process over this socket), ``backbeat.serve.remote``.
"""

from __future__ import annotations

import gc
import json
import socket
import struct
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from backbeat.errors import StoreError
from backbeat.serve.remote import MAX_ANSWER, MAX_REQUEST, ReadService, RemoteReader
from backbeat.sinks import queries as q
from backbeat.sinks.duckdb.store import DuckDBStore
from tests.serve.conftest import Served
from tests.support.sockets import until_closed

WAIT_S = 15.0
SQL = (
    "WITH d AS (DELETE FROM listens RETURNING *) SELECT * FROM d",
    "UPDATE listens SET artist = 'pwned' RETURNING *",
    "SELECT read_text('/etc/passwd')",
    "x'); DROP TABLE listens; --",
)
TEXT_FILTERS = ("artist", "genre", "platform", "country", "mood", "level")
"""The ``ListenFilter`` fields whose values are text (any text: a bound parameter)."""
FREE_TEXT = {(q.SimilarTracks, "track")}
"""Query fields that take any text (a track key, bound as a value): SQL there is a valid
query, which a store refuses as one it does not answer (a recommender's)."""


@pytest.fixture
def service(served: Served, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "r.sock"
    running = ReadService(served.store_reader, served.hub, path)
    running.start()
    yield path
    running.stop()


def _frame(path: Path, kind: bytes, payload: bytes) -> tuple[bytes, bytes]:
    """One raw request to a read service, and its answer (b"", b"" if it hung up)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(WAIT_S)
        sock.connect(str(path))
        try:
            sock.sendall(struct.pack("!cI", kind, len(payload)) + payload)
            head = sock.recv(5, socket.MSG_WAITALL)
        except (BrokenPipeError, ConnectionResetError):
            return b"", b""
        if len(head) < 5:
            return b"", b""
        answer_kind, length = struct.unpack("!cI", head)
        return answer_kind, sock.recv(length, socket.MSG_WAITALL)


def _ask(path: Path, request: Any) -> tuple[bytes, bytes]:
    return _frame(path, b"Q", json.dumps(request).encode())


def _fingerprint(store: DuckDBStore) -> dict[str, tuple[int, int]]:
    """Rows and a hash of the contents of every table of the store."""
    con = duckdb.connect(str(store.path))  # this process's instance of the open file
    try:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE'"
        ).fetchall()
        found = {}
        for schema, table in tables:
            row = con.execute(
                f'SELECT count(*), coalesce(sum(hash(t)), 0) FROM "{schema}"."{table}" t'
            ).fetchone()
            assert row is not None
            found[f"{schema}.{table}"] = (int(row[0]), int(row[1]))
        return found
    finally:
        con.close()


def _refusals() -> Iterator[Any]:
    """Requests no named query accepts."""
    for sql in SQL:
        yield {"query": sql}
        yield {"q": sql, "p": []}
        for kind in q.QUERIES:  # SQL in every field of every query
            for field in kind.__struct_fields__:
                if (kind, field) in FREE_TEXT:
                    continue
                yield {"query": q.name_of(kind), field: sql}
                yield {"query": q.name_of(kind), field: {"sql": sql}}
        for field in ("start", "end", "last"):
            yield {"query": "top-songs", "span": {field: sql}}
        for field in ("min_rating", "skipped"):
            yield {"query": "events", "keep": {field: sql}}
        yield {"query": "top-songs", "sql": sql}  # unknown fields, at the top and nested
        yield {"query": "top-songs", "keep": {"where": sql}}
    for name in ("drop-table", "top-songs; DELETE FROM listens", "", "TOP-SONGS"):
        yield {"query": name}
    for wrong in ("10", 10.5, True, None, [10], {"n": 10}):  # wrong types
        yield {"query": "top-songs", "limit": wrong}
    yield {"query": "top-songs", "span": "last hour"}
    yield {"query": "top-songs", "keep": ["genre", "Rock"]}
    yield {"query": "events", "batches": [1]}
    yield {"query": "events", "batches": "1,2"}
    yield from (  # out of range
        {"query": "top-songs", "limit": 0},
        {"query": "top-songs", "limit": 100_001},
        {"query": "top-songs", "limit": 2**64},
        {"query": "events", "limit": 501},
        {"query": "top-songs", "span": {"last": 59_999}},
        {"query": "top-songs", "span": {"start": 2**63}},
        {"query": "top-songs", "keep": {"min_rating": 5.5}},
        {"query": "top-songs", "keep": {"genre": ""}},
        {"query": "top-songs", "keep": {"genre": "x" * 201}},
        {"query": "events", "batches": [-1, 2]},
        {"query": "dead-letter-records", "after": -1, "upto": 1},
        {"query": "engagement", "by": "artist; DROP TABLE listens"},
        {"query": "metric-rows", "name": "listens; DELETE FROM listens"},
    )
    yield from (None, [], "top-songs", 5, ["top-songs", {}])


def test_only_named_queries_run_and_the_store_is_unchanged(served: Served, service: Path) -> None:
    before = _fingerprint(served.store)
    refused = 0
    for request in _refusals():
        kind, answer = _ask(service, request)
        assert kind == b"E", (request, kind, answer[:200])
        assert answer.startswith(b"not a named query"), (request, answer)
        refused += 1
    for raw in (b"not json", b"\xff\xfe", b"", b'{"query": "top-songs"'):
        assert _frame(service, b"Q", raw)[0] == b"E", raw
    for kind, payload in ((b"X", b""), (b"S", b"SELECT 1"), (b"W", b"DROP")):
        assert _frame(service, kind, payload)[0] == b"E", kind
    for sql in SQL:  # text filters take any text, as a bound value: it matches nothing
        for field in TEXT_FILTERS:
            for name in ("events", "top-songs", "top-artists"):
                kind, answer = _ask(service, {"query": name, "keep": {field: sql}})
                assert kind == b"T", (name, field, answer[:200])
                assert ipc.open_stream(answer).read_all().num_rows == 0
    for sql in SQL:
        kind, answer = _ask(service, {"query": "similar-tracks", "track": sql})
        assert kind == b"U", answer[:200]
    assert refused > 300
    assert _fingerprint(served.store) == before
    kind, answer = _ask(service, {"query": "events", "limit": 5})
    assert kind == b"T"
    assert ipc.open_stream(answer).read_all().num_rows == 5


def _until_closed(path: Path, data: bytes) -> bytes:
    """Send ``data``; what the service sends back before it closes the connection."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(path))
        sock.sendall(data)
        return until_closed(sock, WAIT_S)


def test_a_frame_announcing_too_much_is_refused_unread(service: Path) -> None:
    for kind in (b"Q", b"A", b"W"):  # 4 GiB announced, none of it sent: closed at once
        assert _until_closed(service, struct.pack("!cI", kind, 0xFFFF_FFFF)) == b""
    assert _until_closed(service, struct.pack("!cI", b"Q", MAX_REQUEST + 1)) == b""
    kind, answer = _frame(service, b"Q", b" " * MAX_REQUEST)  # at the cap: read and refused
    assert (kind, answer[:17]) == (b"E", b"not a named query")
    assert _ask(service, {"query": "latest-batch"})[0] == b"T"


class _Fake:
    """A read service that answers every request with a frame of its own making."""

    def __init__(self, path: Path, answers: list[bytes], then: bytes, close: bool) -> None:
        self.requests = 0
        self._answers, self._then, self._close = answers, then, close
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen()
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._held.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        while True:
            head = conn.recv(5, socket.MSG_WAITALL)
            if len(head) < 5:
                return
            conn.recv(struct.unpack("!cI", head)[1], socket.MSG_WAITALL)
            self.requests += 1
            conn.sendall(self._answers.pop(0) if self._answers else self._then)
            if self._close and not self._answers:
                conn.close()
                return

    def stop(self) -> None:
        self._listener.close()
        for conn in self._held:
            conn.close()


def _table_frame(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    payload = sink.getvalue().to_pybytes()
    return struct.pack("!cI", b"T", len(payload)) + payload


def test_the_reader_refuses_an_answer_over_its_cap_and_does_not_ask_again(
    tmp_path: Path,
) -> None:
    over = struct.pack("!cI", b"T", MAX_ANSWER + 1)  # and nothing after it
    fake = _Fake(tmp_path / "f.sock", [_table_frame(pa.table({"b": [7]}))], over, close=False)
    reader = RemoteReader(tmp_path / "f.sock", timeout_s=WAIT_S)
    try:
        assert reader.one(q.LatestBatch()) == {"b": 7}
        started = time.monotonic()
        with pytest.raises(StoreError, match="answer is too large"):
            reader.run(q.LatestBatch())  # on a connection that served before
        assert time.monotonic() - started < WAIT_S / 2  # refused, not read until a timeout
        assert fake.requests == 2  # not asked again on a new connection
    finally:
        reader.close()
        fake.stop()


def test_an_answer_that_announces_much_and_sends_little_costs_little(tmp_path: Path) -> None:
    frame = struct.pack("!cI", b"T", MAX_ANSWER) + b"x" * 1024
    fake = _Fake(tmp_path / "f.sock", [frame], b"", close=True)
    reader = RemoteReader(tmp_path / "f.sock", timeout_s=WAIT_S)
    tracemalloc.start()
    try:
        with pytest.raises(StoreError, match="lost the store's process"):
            reader.run(q.LatestBatch())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        reader.close()
        fake.stop()
    assert peak < 32 << 20, f"{peak:,} bytes allocated for 1 KiB received"


def test_connections_end_with_their_threads(served: Served, tmp_path: Path) -> None:
    """Thread pools come and go: their connections must not pile up in the service."""
    running = ReadService(served.store_reader, served.hub, tmp_path / "r.sock")
    running.start()
    remote = RemoteReader(running.path)
    try:
        for _ in range(3):
            threads = [
                threading.Thread(target=remote.run, args=(q.LatestBatch(),)) for _ in range(10)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        gc.collect()
        deadline = time.monotonic() + WAIT_S
        while running.connections and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running.connections == 0
        assert remote.run(q.Events(limit=5)).num_rows == 5
    finally:
        remote.close()
        running.stop()
