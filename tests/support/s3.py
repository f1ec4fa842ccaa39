"""An S3-compatible server for the tests: ``moto_server`` (the ``moto[server]`` dev dependency,
installed next to the interpreter) on a free loopback port, and a bucket per test.

:func:`moto_server` starts it, waits until it answers HTTP (polling, never a fixed sleep) and
stops it on exit; the session fixture ``s3_endpoint`` in ``tests/conftest.py`` uses it unless
``BACKBEAT_TEST_S3`` names a server (MinIO, say). :func:`fresh_bucket` makes an empty bucket
with pyarrow's own S3 client, the one the lake sink writes with.

Next: ``tests/sinks/test_lake.py`` (the tests), ``backbeat/sinks/lake/sink.py``.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pyarrow import fs

from tests.support.sockets import free_port, server_process, venv_tool

STARTUP_TIMEOUT_S = 30.0
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""What the tests give moto (it accepts any); a real server's come from the environment."""


def moto_binary() -> Path | None:
    """``moto_server`` beside the running interpreter (the venv's bin), or on PATH."""
    return venv_tool("moto_server")


def wait_for_http(endpoint: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Return once ``endpoint`` answers an HTTP request, any status (or fail with why)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(endpoint, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # an S3 error document is an answer
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"no HTTP answer from {endpoint} within {STARTUP_TIMEOUT_S:.0f}s")


@contextmanager
def moto_server(folder: Path) -> Iterator[str]:
    """A fresh in-memory S3 server (its log in ``folder``); its ``http://host:port``.

    Skips the calling test when moto is not installed.
    """
    binary = moto_binary()
    if binary is None:
        pytest.skip("no S3 server: moto[server] (moto_server) is not installed")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    endpoint = f"http://127.0.0.1:{port}"
    command = [str(binary), "-H", "127.0.0.1", "-p", str(port)]
    with server_process(command, folder / "server.log", lambda p: wait_for_http(endpoint, p)):
        yield endpoint


def s3_filesystem(endpoint: str) -> fs.S3FileSystem:
    """pyarrow's S3 client for ``endpoint`` (credentials from the ``AWS_*`` variables)."""
    where = urlsplit(endpoint)
    return fs.S3FileSystem(endpoint_override=where.netloc, scheme=where.scheme or "http",
                           region="us-east-1", allow_bucket_creation=True)  # fmt: skip


def fresh_bucket(endpoint: str) -> str:
    """The name of a new, empty bucket on ``endpoint``."""
    name = "t" + uuid.uuid4().hex[:12]
    s3_filesystem(endpoint).create_dir(name)
    return name
