"""Where a store's time goes, for ``bench_stores.py``: three cheap, real measurements.

- :class:`StatementTimer` wraps the PostgreSQL store's own calls in the benchmark's child
  process (``copy_in`` per table, the compaction, the whole ``commit``), so the client's wall
  time per statement kind is known, CSV encoding of the Arrow rows included.
- :func:`server_statements` reads ``pg_stat_statements`` (the server's execution time per
  statement, a COPY's including the receipt of its rows), grouped by the same kinds.
- :class:`ServerCpu` adds up the CPU seconds of a process tree (the PostgreSQL postmaster and
  its backends, secantusd-py, or the benchmark's own process and its read-ahead child) since
  it was created.

Next: ``bench_stores.py`` (the benchmark that uses them).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import psutil

KINDS = (
    ("COPY partial rows", re.compile(r'^COPY "m_')),
    ("COPY listens", re.compile(r'^COPY "listens"')),
    ("COPY de-dup keys", re.compile(r'^COPY "meta_seen"')),
    ("compaction", re.compile(r"^WITH gone AS \(DELETE|meta_compaction")),
    ("COMMIT", re.compile(r"^COMMIT")),
    ("commit lock", re.compile(r"pg_advisory_xact_lock")),
)
OTHER = "other (positions, marks, batch row, notify)"


def kind_of(statement: str) -> str:
    """The kind a statement (or a ``copy_in`` table) is counted under."""
    return next((name for name, pattern in KINDS if pattern.search(statement)), OTHER)


class StatementTimer:
    """Client-side seconds per statement kind of the PostgreSQL store (see the module doc)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def _add(self, kind: str, t0: float) -> None:
        self.seconds[kind] = self.seconds.get(kind, 0.0) + time.perf_counter() - t0

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Wrap the store module's ``copy_in``, ``_compact`` and ``PostgresStore.commit``."""
        from backbeat.sinks.postgres import store

        copy_in, compact, commit = store.copy_in, store._compact, store.PostgresStore.commit

        def timed_copy(cur: Any, table: str, *args: Any) -> None:
            t0 = time.perf_counter()
            copy_in(cur, table, *args)
            self._add(kind_of(f'COPY "{table}"'), t0)

        def timed_compact(*args: Any) -> None:
            t0 = time.perf_counter()
            compact(*args)
            self._add("compaction", t0)

        def timed_commit(this: Any, *args: Any) -> int:
            t0 = time.perf_counter()
            batch_id = commit(this, *args)
            self._add("whole commit", t0)
            return batch_id

        store.copy_in, store._compact = timed_copy, timed_compact
        store.PostgresStore.commit = timed_commit  # type: ignore[method-assign]
        try:
            yield
        finally:
            store.copy_in, store._compact = copy_in, compact
            store.PostgresStore.commit = commit  # type: ignore[method-assign]


def reset_statements(url: str) -> bool:
    """Create ``pg_stat_statements`` in the database of ``url`` and zero it; False when the
    server does not have it preloaded (then only the client side is timed)."""
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True) as con:
            con.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            con.execute("SELECT pg_stat_statements_reset()")
    except psycopg.Error:
        return False
    return True


def server_statements(url: str) -> dict[str, dict[str, float]] | None:
    """Server exec seconds, calls and rows per statement kind in the database of ``url``
    (None without ``pg_stat_statements``)."""
    import psycopg

    query = (
        "SELECT query, calls, total_exec_time / 1000, rows FROM pg_stat_statements "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    try:
        with psycopg.connect(url, autocommit=True) as con:
            rows = con.execute(query).fetchall()
    except psycopg.Error:
        return None
    kinds: dict[str, dict[str, float]] = {}
    for text, calls, seconds, count in rows:
        if "pg_stat_statements" in text:
            continue
        into = kinds.setdefault(kind_of(text), {"calls": 0, "seconds": 0.0, "rows": 0})
        into["calls"] += calls
        into["seconds"] += float(seconds)
        into["rows"] += count
    return kinds


class ServerCpu:
    """CPU seconds used by a process and its descendants since this object was made."""

    def __init__(self, root: psutil.Process) -> None:
        self._root = root
        self._start = self._times()

    @classmethod
    def of_server(cls, url: str | None) -> ServerCpu | None:
        """The tree of the process listening on ``url``'s loopback port (None: not here)."""
        parts = urlsplit(url or "")
        if parts.hostname not in ("127.0.0.1", "localhost", "::1") or not parts.port:
            return None
        for conn in psutil.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == parts.port and conn.pid:
                return cls(psutil.Process(conn.pid))
        return None

    def _times(self) -> dict[int, float]:
        times: dict[int, float] = {}
        for proc in [self._root, *self._root.children(recursive=True)]:
            try:
                cpu = proc.cpu_times()
                times[proc.pid] = cpu.user + cpu.system
            except psutil.Error:
                pass
        return times

    def used(self) -> float:
        """Seconds since creation (processes that ended meanwhile are not counted)."""
        now = self._times()
        return sum(cpu - self._start.get(pid, 0.0) for pid, cpu in now.items())
