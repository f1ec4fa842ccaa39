"""Reading a raw socket until the other side closes it (tests that speak a protocol by hand).

Next: ``tests/serve/test_limits.py``, ``tests/serve/test_remote.py``.
"""

from __future__ import annotations

import socket


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
