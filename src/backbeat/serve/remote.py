"""The read interface across processes: the web server in its own process (its own GIL, its
own core) reads the store through the process that writes it.

The writing process runs a :class:`ReadService` on a Unix socket (mode 0600, in a private
0700 folder); the web process uses a :class:`RemoteReader`, which is a
:class:`~backbeat.sinks.queries.Reader` like any other. The socket carries named queries
only, never SQL. Each frame is ``kind (1 byte) | length (4 bytes) | payload``:

- ``Q`` + a query as JSON (``{"query": "top-songs", "limit": 10, ...}``, decoded and
  validated against the named queries: an unknown name, a wrong type or an out-of-range
  value is refused) -> ``T`` + an Arrow IPC stream, or ``E`` + the error text (``U`` when the
  store does not answer that query, ``M`` when what it names is missing: a
  :class:`~backbeat.errors.NotFoundError`), raised on the reading side as the same error;
- ``A`` -> ``N`` + the names of the queries the store answers, as JSON (``Reader.answers``);
  ``F`` -> ``N`` + those it also answers with a listen filter (``Reader.filters``);
- ``W`` + the last batch id seen (8 bytes) -> ``V`` + the newest batch id, once it is newer
  or after ``timeout`` seconds: the web process learns of each commit without polling.

A frame is refused, unread, when its header announces more than the reading side accepts
(``MAX_REQUEST`` bytes for the service, ``MAX_ANSWER`` for the reader), and the connection is
closed; payloads are read in slices, so a peer announcing much and sending little costs
little. Queries are answered on the service's thread per connection (DuckDB runs them
without the GIL), so the engine thread is never blocked for long. When the writing process
dies, the socket closes and the web process stops (it never outlives its engine).

Next: ``web_process.py`` (the web server in a child process), ``backbeat.sinks.queries``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import struct
import threading
import weakref
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.ipc as ipc

from backbeat.errors import BackbeatError, NotFoundError, StoreError, UnsupportedQueryError
from backbeat.serve.hub import CommitHub
from backbeat.sinks.queries import AnyQuery, Query, Reader

log = logging.getLogger(__name__)

_HEAD = struct.Struct("!cI")
_VERSION = struct.Struct("!q")
WAIT_S = 15.0  # the longest a ``W`` request waits before answering with the same version
IDLE_S = 300.0  # a connection silent this long is closed (the reader reconnects on demand)
MAX_REQUEST = 64 << 10  # a query is a few hundred bytes
MAX_ANSWER = 1 << 30  # genre windows over years of replayed minutes: tens of MB
_SLICE = 1 << 20  # bytes read at a time
_DECODE = msgspec.json.Decoder(AnyQuery)


def _send(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    sock.sendall(_HEAD.pack(kind, len(payload)) + payload)


class FrameTooLargeError(ConnectionError):
    """A frame header announced more bytes than the reading side accepts (the connection is
    dropped without reading them)."""


def _receive_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), _SLICE))
        if not chunk:
            raise ConnectionError("the other side closed the connection")
        buf += chunk
    return bytes(buf)


def _receive(sock: socket.socket, limit: int) -> tuple[bytes, bytes]:
    """One frame; FrameTooLargeError (the connection is to be dropped) when it is over
    ``limit``, ConnectionError when the other side closed the connection."""
    kind, length = _HEAD.unpack(_receive_exactly(sock, _HEAD.size))
    if length > limit:
        raise FrameTooLargeError(f"a frame of {length:,} bytes is over the limit of {limit:,}")
    return kind, _receive_exactly(sock, length)


def _arrow_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


class ReadService:
    """Answers read queries and batch-id waits for other processes, over a Unix socket."""

    def __init__(self, reader: Reader, hub: CommitHub, path: Path) -> None:
        self._reader = reader
        self._hub = hub
        self.path = path
        self._listener: socket.socket | None = None
        self._closed = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        """Listen on :attr:`path` (replacing a stale socket file) and accept in a thread."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        os.chmod(self.path, 0o600)  # the owner's only (its folder should be too)
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, name="read-service", daemon=True).start()

    @property
    def connections(self) -> int:
        """Connections open now (one per reading thread of the web process)."""
        with self._lock:
            return len(self._conns)

    def stop(self) -> None:
        self._closed.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # stopped
            conn.settimeout(IDLE_S)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)
        try:
            self._answer(conn)
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _answer(self, conn: socket.socket) -> None:
        """Answer ``conn``'s requests, one at a time, until it closes or stays idle."""
        while not self._closed.is_set():
            try:
                kind, payload = _receive(conn, MAX_REQUEST)
            except FrameTooLargeError as exc:
                log.warning("read service: %s; connection closed", exc)
                return
            except (ConnectionError, OSError):
                return  # the web process closed it, went away, or was idle for IDLE_S
            try:
                reply = self._reply(kind, payload)
            except UnsupportedQueryError as exc:
                reply = b"U", str(exc).encode()
            except NotFoundError as exc:
                reply = b"M", str(exc).encode()
            except BackbeatError as exc:
                reply = b"E", str(exc).encode()
            except Exception as exc:  # a bad request must not end the service
                log.warning("read service: %s: %s", type(exc).__name__, exc)
                reply = b"E", f"{type(exc).__name__}: {exc}".encode()
            try:
                _send(conn, *reply)
            except (ConnectionError, OSError):
                return

    def _reply(self, kind: bytes, payload: bytes) -> tuple[bytes, bytes]:
        if kind == b"Q":
            try:
                query = _DECODE.decode(payload)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise StoreError(f"not a named query: {exc}") from None
            return b"T", _arrow_bytes(self._reader.run(query))
        if kind == b"A":
            return b"N", json.dumps(sorted(self._reader.answers())).encode()
        if kind == b"F":
            return b"N", json.dumps(sorted(self._reader.filters())).encode()
        if kind == b"W":
            (seen,) = _VERSION.unpack(payload)
            return b"V", _VERSION.pack(self._hub.wait_newer_blocking(seen, WAIT_S))
        raise StoreError(f"unknown request {kind!r}")


class _Connection:
    """One reading thread's socket; closed when the thread (and so this object) is gone."""

    __slots__ = ("__weakref__", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        weakref.finalize(self, sock.close)


class RemoteReader(Reader):
    """A :class:`Reader` over a :class:`ReadService`: one connection per reading thread,
    closed when the thread ends."""

    def __init__(self, path: Path, timeout_s: float = 30.0) -> None:
        self._path = path
        self._timeout_s = timeout_s
        self._local = threading.local()
        self._open: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._answers: frozenset[str] | None = None
        self._filters: frozenset[str] | None = None

    def close(self) -> None:
        """Close every thread's connection."""
        for conn in list(self._open):
            conn.sock.close()

    def _connect(self) -> _Connection:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self._timeout_s)
        try:
            sock.connect(str(self._path))
        except OSError as exc:
            sock.close()
            raise StoreError(f"the store's process is not answering at {self._path}") from exc
        conn = _Connection(sock)
        self._local.conn = conn
        self._open.add(conn)
        return conn

    def _ask(
        self, kind: bytes, payload: bytes, timeout_s: float | None = None
    ) -> tuple[bytes, bytes]:
        conn: _Connection | None = getattr(self._local, "conn", None)
        for attempt in (1, 2):  # a connection the service closed as idle: reconnect once
            fresh = conn is None
            if conn is None:
                conn = self._connect()
            try:
                conn.sock.settimeout(timeout_s or self._timeout_s)
                _send(conn.sock, kind, payload)
                return _receive(conn.sock, MAX_ANSWER)
            except TimeoutError as exc:
                self._drop(conn)
                raise StoreError(
                    f"the store did not answer within {timeout_s or self._timeout_s:g} s"
                ) from exc
            except FrameTooLargeError as exc:  # asking again would get the same answer
                self._drop(conn)
                raise StoreError(f"the store's answer is too large: {exc}") from exc
            except (ConnectionError, OSError) as exc:
                self._drop(conn)
                conn = None
                if fresh or attempt == 2:
                    raise StoreError(f"lost the store's process ({exc})") from exc
        raise AssertionError("unreachable")

    def _drop(self, conn: _Connection) -> None:
        conn.sock.close()
        self._open.discard(conn)
        self._local.conn = None

    def _names(self, kind: bytes) -> frozenset[str]:
        answer, payload = self._ask(kind, b"")
        if answer != b"N":
            raise StoreError(payload.decode())
        return frozenset(json.loads(payload))

    def answers(self) -> frozenset[str]:
        """The store's :meth:`~backbeat.sinks.queries.Reader.answers` (asked once)."""
        if self._answers is None:
            self._answers = self._names(b"A")
        return self._answers

    def filters(self) -> frozenset[str]:
        """The store's :meth:`~backbeat.sinks.queries.Reader.filters` (asked once)."""
        if self._filters is None:
            self._filters = self._names(b"F")
        return self._filters

    def run(self, query: Query) -> pa.Table:
        kind, payload = self._ask(b"Q", msgspec.json.encode(query))
        if kind == b"U":
            raise UnsupportedQueryError(payload.decode())
        if kind == b"M":
            raise NotFoundError(payload.decode())
        if kind == b"E":
            raise StoreError(payload.decode())
        return ipc.open_stream(payload).read_all()

    def wait_newer(self, seen: int) -> int:
        """The newest batch id once it is newer than ``seen`` (or ``seen`` after a while)."""
        kind, payload = self._ask(b"W", _VERSION.pack(seen), timeout_s=WAIT_S + self._timeout_s)
        if kind != b"V":
            raise StoreError(payload.decode())
        (version,) = _VERSION.unpack(payload)
        return int(version)

    def follow(self, hub: CommitHub) -> None:
        """Publish every new batch id to ``hub`` until the store's process goes away."""
        seen = hub.version
        while True:
            try:
                seen = self.wait_newer(seen)
            except StoreError as exc:
                if isinstance(exc.__cause__, TimeoutError):
                    continue  # a slow answer (a stopped or starved process): ask again
                log.info("store process gone: %s", exc)
                return
            hub.publish(seen)
