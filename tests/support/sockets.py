"""Loopback sockets for tests: a free port to start a server on, and reading a raw socket until
the other side closes it (tests that speak a protocol by hand).

Next: ``tests/serve/test_limits.py``, ``tests/serve/test_remote.py``.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (a server started on it may still lose
    the race to another process: retry with a new one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def until_closed(sock: socket.socket, wait_s: float) -> bytes:
    """Everything received until the peer closes the connection (a reset counts as closed);
    fails the test when it is still open after ``wait_s`` seconds of silence."""
    sock.settimeout(wait_s)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"the peer kept the connection open; it sent {received!r}") from None
    return received


def venv_tool(name: str) -> Path | None:
    """The executable ``name`` beside the running interpreter (the venv's bin), or on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return candidate
    found = shutil.which(name)
    return Path(found) if found else None


@contextmanager
def server_process(
    command: Sequence[str],
    log: Path,
    ready: Callable[[subprocess.Popen[bytes]], None],
    stop_timeout_s: float = 10.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process: ``command`` started with its output in ``log``, ``ready(proc)``
    waited for (it raises when the server does not come up), then SIGTERM at exit (kill after
    ``stop_timeout_s``)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT)
        try:
            ready(proc)
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
