"""The web server in a child process, reading the store of the process that writes it.

``backbeat demo`` runs the simulator and the engine in one process; serving HTTP from the
same process would share one GIL with them, and every request would wait for the engine's
Python work. :class:`WebProcess` starts the FastAPI app in a spawned child instead: the child
answers HTTP on its own core and reads through a :class:`~backbeat.serve.remote.RemoteReader`
(queries run in this process, on the store it has open), and learns of each commit from the
hub this process publishes to. It has the same ``start`` / ``url`` / ``stop`` as
:class:`~backbeat.serve.app.WebServer`, and it exits by itself when this process dies.

Next: ``remote.py`` (the socket protocol), ``app.py`` (the app and the in-process server).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

from backbeat.errors import BackbeatError, ConfigError
from backbeat.observe import logs
from backbeat.serve.hub import CommitHub, latest_batch
from backbeat.serve.remote import ReadService, RemoteReader
from backbeat.sinks.queries import Reader

if TYPE_CHECKING:
    from backbeat.serve.auth import AuthConfig

log = logging.getLogger(__name__)


class WebProcess:
    """The dashboard and API over ``reader`` (this process's store), served by a child process."""

    def __init__(
        self, reader: Reader, hub: CommitHub, host: str, port: int, token: AuthConfig
    ) -> None:
        self._reader = reader
        self._hub = hub
        self._args = (host, port, token)
        self._service: ReadService | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._stopping = threading.Event()
        self.url = f"http://{host}:{port}/"

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the child; return once it listens (ConfigError with its reason if not)."""
        folder = Path(tempfile.mkdtemp(prefix="backbeat-web-"))  # 0700, and a short path
        self._service = ReadService(self._reader, self._hub, folder / "read.sock")
        self._service.start()
        context = multiprocessing.get_context("spawn")  # never fork a process with threads
        receive, send = context.Pipe(duplex=False)
        process = context.Process(
            target=_serve,
            args=(str(self._service.path), *self._args, logs.current(), send),
            name="backbeat-web",
            daemon=True,
        )
        # Ctrl-C goes to the whole process group: the child ignores it from its first
        # instruction (an ignored signal stays ignored across exec); this process stops it.
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            process.start()
        except OSError as exc:  # e.g. the working directory was deleted under us
            send.close()
            receive.close()
            self.stop()
            raise ConfigError(f"the web server process could not start: {exc}") from exc
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
        self._process = process
        send.close()
        with receive:
            if not receive.poll(timeout_s):
                self.stop()
                raise ConfigError(f"the web server did not start within {timeout_s:g} s")
            try:
                kind, value = receive.recv()
            except EOFError:
                kind, value = "error", "the web server process ended before it listened"
        if kind != "url":
            self.stop()
            raise ConfigError(value)
        self.url = value
        threading.Thread(target=self._watch, args=(self._process,), daemon=True).start()

    def _watch(self, process: multiprocessing.process.BaseProcess) -> None:
        """Say so when the child ends without being asked to (the engine goes on)."""
        process.join()
        if not self._stopping.is_set():
            log.warning(
                "the web server process ended (exit code %s): the dashboard at %s is gone; "
                "the stream goes on",
                process.exitcode,
                self.url,
            )

    def stop(self) -> None:
        self._stopping.set()
        if self._process is not None:
            self._process.terminate()
            self._process.join(timeout=5)
            self._process = None
        if self._service is not None:
            self._service.stop()
            shutil.rmtree(self._service.path.parent, ignore_errors=True)
            self._service = None


ENGINE_NICENESS = 5


def yield_to_web() -> None:
    """Lower the calling thread's CPU priority (and that of threads it starts later) below the
    web process's: the engine is throughput work, the dashboard is interactive, and on a
    busy machine requests should not queue behind a batch. Threads started before (the read
    service answering the web process, DuckDB's workers) keep theirs. Measured on 2 cores at
    12k events/s with 2,200 req/s: ``/api/top-songs`` p99 ~19 ms -> ~12 ms, ingest unchanged."""
    with contextlib.suppress(OSError):  # a platform without nice: nothing to do
        os.nice(ENGINE_NICENESS)


def process_server(
    reader: Reader, host: str, port: int, token: AuthConfig
) -> tuple[WebProcess, CommitHub]:
    """A server in a child process over the store this process writes (``reader``: its named
    queries, answered here); publish each batch id to the hub."""
    hub = CommitHub(latest_batch(reader))
    return WebProcess(reader, hub, host, port, token), hub


def _serve(
    path: str,
    host: str,
    port: int,
    token: AuthConfig,
    logging_as: tuple[str, logs.LogFormat],
    parent: Connection,
) -> None:
    """The child: serve until the parent's read service goes away (or SIGTERM), logging
    as the parent does."""
    from backbeat.serve.app import WebServer, create_app  # the web stack loads in the child

    logs.configure(*logging_as)
    reader = RemoteReader(Path(path))
    try:
        hub = CommitHub(latest_batch(reader))
        web = WebServer(create_app(reader, hub, token), host, port)
        web.start()
    except BackbeatError as exc:
        parent.send(("error", str(exc)))
        return
    parent.send(("url", web.url))
    parent.close()
    reader.follow(hub)
    web.stop()
    shutil.rmtree(Path(path).parent, ignore_errors=True)  # the parent may have had no time
