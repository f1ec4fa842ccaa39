"""A MongoDB-protocol server for the tests: ``secantusd-py`` (the SecantusDB dev dependency,
installed next to the interpreter) on a free loopback port, and a database name per test.

:func:`secantus_server` starts it with its data in a temporary folder, waits until it
answers a ``ping`` (polling, never a fixed sleep) and stops it on exit; the session fixture
``mongo_url`` in ``tests/conftest.py`` uses it unless ``BACKBEAT_TEST_MONGO`` names a server.

Next: ``tests/sinks/test_mongo.py`` (the tests), ``tests/sinks/test_suite.py``.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.sockets import free_port, server_process, venv_tool

STARTUP_TIMEOUT_S = 30.0


def secantus_binary() -> Path | None:
    """``secantusd-py`` beside the running interpreter (the venv's bin), or on PATH."""
    return venv_tool("secantusd-py")


def wait_for_ping(url: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Return once the server at ``url`` answers ``ping`` (or fail with the reason)."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=500)
    try:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"secantusd-py exited with code {proc.returncode}")
            try:
                client.admin.command("ping")
                return
            except PyMongoError:
                time.sleep(0.1)
    finally:
        client.close()
    raise RuntimeError(f"no answer to ping from {url} within {STARTUP_TIMEOUT_S:.0f}s")


@contextmanager
def secantus_server(folder: Path) -> Iterator[str]:
    """A fresh server (data and log in ``folder``); its ``mongodb://host:port`` URL.

    Skips the calling test when secantusdb is not installed.
    """
    binary = secantus_binary()
    if binary is None:
        pytest.skip("no MongoDB server: secantusdb (secantusd-py) is not installed")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    url = f"mongodb://127.0.0.1:{port}"
    command = [str(binary), "--host", "127.0.0.1", "--port", str(port),
               "--storage-path", str(folder / "data"), "--log-level", "WARNING"]  # fmt: skip
    with server_process(command, folder / "server.log", lambda proc: wait_for_ping(url, proc)):
        yield url


def database_url(server: str, name: str | None = None) -> str:
    """``server`` (``mongodb://host:port[/...]``) with a database of its own (unique)."""
    base = server.split("?")[0].rstrip("/")
    scheme, _, rest = base.partition("://")
    hosts = rest.split("/")[0]
    return f"{scheme}://{hosts}/{name or 't' + uuid.uuid4().hex[:12]}"
