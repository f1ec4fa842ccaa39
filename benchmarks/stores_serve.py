"""``/api/top-songs`` served from PostgreSQL, for ``bench_stores.py``: a real ``backbeat serve``
process over a database, under ``web_load.py``'s paced load (N keep-alive connections, R
requests/s in all, evenly spaced, latency from each request's due time).

Two phases: ``idle`` serves the database the last throughput round wrote (all its events,
nothing committing); ``ingest`` serves a fresh database while a live stream commits into it
(``--child ingest``: the demo's simulator at x300 event time, ~10,000 events/s, a batch every
250 ms, each commit announced to ``serve`` by ``pg_notify``). Reported per phase: p50, p99
and max latency, requests answered and failed, the events the store took meanwhile (its
``/metrics`` counter), and the CPU of the serve process and of the PostgreSQL server.

Next: ``bench_stores.py`` (the benchmark), ``web_load.py`` (the load), ``bench_web.py``.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from stores_probe import ServerCpu
from web_clients import events_in, paced

HERE = Path(__file__).resolve().parent
LIVE_USERS = 35_000
LIVE_SPEED = 300.0


def ingest(url: str, users: int = LIVE_USERS) -> None:
    """Stream the live simulator into the PostgreSQL store at ``url`` until SIGTERM."""
    from backbeat import wiring
    from backbeat.engine.base import EngineSettings
    from backbeat.engine.pipeline import Pipeline
    from backbeat.sinks.postgres.store import PostgresStore

    store = PostgresStore(url)
    source = wiring.live_source(users=users, seed=7, speed=LIVE_SPEED)
    pipeline = Pipeline(source, store, settings=EngineSettings(max_future_ms=None))
    try:
        pipeline.run()
    finally:
        pipeline.close()
        store.close()


def _wait_until_serving(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"backbeat serve exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}health", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"backbeat serve did not answer /health in 60 s: {log.read_text()[-2000:]}")


def measure(
    name: str,
    database: str,
    work: Path,
    *,
    stream: bool,
    warmup: float,
    seconds: int,
    rate: int,
    connections: int,
    live_users: int = LIVE_USERS,
    status: Callable[[str], None],
) -> dict[str, Any]:
    """One phase (see the module doc); its figures."""
    from tests.support.sockets import free_port, server_process

    with _ingesting(database, work, stream, live_users):
        if stream:
            status(f"{name}: warming up the live stream ({warmup:.0f} s)…")
            time.sleep(warmup)
        port = free_port()
        base = f"http://127.0.0.1:{port}/"
        log = work / f"serve-{name}.log"
        command = [sys.executable, "-m", "backbeat", "serve", "--store", database,
                   "--port", str(port)]  # fmt: skip
        ready = partial(_wait_until_serving, base, log=log)
        with server_process(command, log, ready, stop_timeout_s=30) as server:
            paced(f"{base}api/top-songs", connections, 2, rate)  # warm the pool and the caches
            serve_cpu = ServerCpu(psutil.Process(server.pid))
            pg_cpu = ServerCpu.of_server(database)
            n0, t0 = events_in(base), time.monotonic()
            status(f"{name}: {rate:,} req/s on /api/top-songs for {seconds} s…")
            figures = paced(f"{base}api/top-songs", connections, seconds, rate)
            took = time.monotonic() - t0
            figures["events_per_s"] = (events_in(base) - n0) / took
            figures["serve_cpu"] = serve_cpu.used() / took
            figures["postgres_cpu"] = pg_cpu.used() / took if pg_cpu else float("nan")
    figures["phase"] = name
    return figures


@contextmanager
def _ingesting(database: str, work: Path, stream: bool, users: int) -> Iterator[None]:
    if not stream:
        yield
        return
    from tests.support.sockets import server_process

    command = [sys.executable, str(HERE / "bench_stores.py"), "--child", "ingest",
               "--postgres", database, "--live-users", str(users)]  # fmt: skip
    log = work / "ingest.log"
    with server_process(command, log, lambda proc: None, stop_timeout_s=30) as proc:
        time.sleep(1.0)
        if proc.poll() is not None:
            raise RuntimeError(f"the live stream exited: {log.read_text()}")
        yield
