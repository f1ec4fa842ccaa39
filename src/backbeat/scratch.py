"""A scratch DuckDB: one private in-memory connection per thread, reused across calls.

For short vectorized jobs over Arrow data (encoding JSON, finding repeated keys) where opening
a connection per call would cost more than the work. Never holds state between calls.

Next: ``backbeat.events.codec`` and ``backbeat.engine.dedup`` use it.
"""

from __future__ import annotations

import threading

import duckdb

_local = threading.local()


def scratch() -> duckdb.DuckDBPyConnection:
    """This thread's scratch connection (created on first use)."""
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect(config={"threads": 2})
    return con
