"""The read interface across processes: the web server in its own process (its own GIL, its
own core) reads the store through the process that writes it.

The writing process runs a :class:`ReadService` on a Unix socket (mode 0600, in the store's
folder); the web process uses a :class:`RemoteReader`, which is a :class:`Reader` like any
other. Two requests exist, each a frame ``kind (1 byte) | length (4 bytes) | payload``:

- ``Q`` + JSON ``{"q": sql, "p": params}`` -> ``T`` + an Arrow IPC stream, or ``E`` + the
  error text (raised as :class:`StoreError` on the reading side);
- ``W`` + the last batch id seen (8 bytes) -> ``V`` + the newest batch id, once it is newer
  or after ``timeout`` seconds: the web process learns of each commit without polling.

Queries are answered on the service's thread per connection with its own cursor (DuckDB runs
them without the GIL), so the engine thread is never blocked for long. When the writing
process dies, the socket closes and the web process stops (it never outlives its engine).

Next: ``web_process.py`` (the web server in a child process), ``reader.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import struct
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from backbeat.errors import BackbeatError, StoreError
from backbeat.serve.hub import CommitHub
from backbeat.serve.reader import Reader

log = logging.getLogger(__name__)

_HEAD = struct.Struct("!cI")
_VERSION = struct.Struct("!q")
WAIT_S = 15.0  # the longest a ``W`` request waits before answering with the same version


def _send(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    sock.sendall(_HEAD.pack(kind, len(payload)) + payload)


def _receive_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the other side closed the connection")
        buf += chunk
    return bytes(buf)


def _receive(sock: socket.socket) -> tuple[bytes, bytes]:
    kind, length = _HEAD.unpack(_receive_exactly(sock, _HEAD.size))
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
        old_mask = os.umask(0o177)  # the socket file is the owner's only
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(old_mask)
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, name="read-service", daemon=True).start()

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
        """Answer ``conn``'s requests, one at a time, until it closes."""
        while not self._closed.is_set():
            try:
                kind, payload = _receive(conn)
            except (ConnectionError, OSError):
                return  # the web process closed it or went away
            try:
                if kind == b"Q":
                    request = json.loads(payload)
                    table = self._reader.sql(request["q"], tuple(request["p"]))
                    _send(conn, b"T", _arrow_bytes(table))
                elif kind == b"W":
                    (seen,) = _VERSION.unpack(payload)
                    version = self._hub.wait_newer_blocking(seen, WAIT_S)
                    _send(conn, b"V", _VERSION.pack(version))
                else:
                    _send(conn, b"E", f"unknown request {kind!r}".encode())
            except BackbeatError as exc:
                _send(conn, b"E", str(exc).encode())
            except (ConnectionError, OSError):
                return


class RemoteReader:
    """A :class:`Reader` over a :class:`ReadService`: one connection per reading thread."""

    def __init__(self, path: Path, timeout_s: float = 30.0) -> None:
        self._path = path
        self._timeout_s = timeout_s
        self._local = threading.local()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            for sock in self._open:
                sock.close()
            self._open.clear()

    def _connection(self) -> socket.socket:
        sock: socket.socket | None = getattr(self._local, "sock", None)
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self._timeout_s)
            try:
                sock.connect(str(self._path))
            except OSError as exc:
                sock.close()
                raise StoreError(f"the store's process is not answering at {self._path}") from exc
            self._local.sock = sock
            with self._lock:
                self._open.add(sock)
        return sock

    def _ask(self, kind: bytes, payload: bytes) -> tuple[bytes, bytes]:
        sock = self._connection()
        try:
            _send(sock, kind, payload)
            return _receive(sock)
        except (ConnectionError, OSError) as exc:
            sock.close()
            with self._lock:
                self._open.discard(sock)
            self._local.sock = None
            raise StoreError(f"lost the store's process ({exc})") from exc

    def sql(self, query: str, params: tuple[object, ...] = ()) -> pa.Table:
        kind, payload = self._ask(b"Q", json.dumps({"q": query, "p": list(params)}).encode())
        if kind == b"E":
            raise StoreError(payload.decode())
        return ipc.open_stream(payload).read_all()

    def wait_newer(self, seen: int) -> int:
        """The newest batch id once it is newer than ``seen`` (or ``seen`` after a while)."""
        kind, payload = self._ask(b"W", _VERSION.pack(seen))
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
                log.info("store process gone: %s", exc)
                return
            hub.publish(seen)
