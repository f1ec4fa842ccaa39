"""The ``/metrics`` endpoint of a process that serves nothing else (``stream
--metrics-port``): ``prometheus_client``'s own HTTP server on a daemon thread.

Next: ``metrics.py`` (what it exports).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, start_http_server

from backbeat.errors import ConfigError


@contextlib.contextmanager
def exporting(registry: CollectorRegistry, host: str, port: int) -> Iterator[str]:
    """Serve ``registry`` at ``http://host:port/metrics`` until the block ends; yields the URL.

    Raises:
        ConfigError: the address cannot be bound (in use, not this machine's).
    """
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(
            f"--metrics-port {port}: cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
    try:
        bound = server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{bound}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
