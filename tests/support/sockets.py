"""Loopback sockets for tests: a free port to start a server on, and reading a raw socket until
the other side closes it (tests that speak a protocol by hand).

Next: ``tests/serve/test_limits.py``, ``tests/serve/test_remote.py``.
"""

from __future__ import annotations

import socket


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
