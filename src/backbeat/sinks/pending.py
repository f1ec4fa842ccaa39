"""A reader for a store that holds no results yet: ``backbeat serve`` started before the
stream's first commit (in Docker Compose or Kubernetes the two start together).

:class:`PendingReader` answers every query empty, from an in-memory DuckDB holding the
store's tables with no rows, so the API and the dashboard work (with nothing in them) and
``/health`` says ``ok`` with ``batch_id`` null: until the first commit it does not claim the
commit counters (``batch-totals``, ``latest-batch``). It tries to open the real reader at
most once a second, at a query or while the live watcher waits, and from the first success on
answers from it: no restart needed. Only a store that says it is not ready yet
(:class:`~backbeat.errors.StoreNotReadyError`) is waited for; any other error (no server,
a wrong password) is raised at once, as before.

Next: ``registry.py`` (``open_reader(..., until_ready=True)``), ``commands/serve.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa

from backbeat.errors import StoreNotReadyError
from backbeat.sinks import queries as q
from backbeat.sinks.duckdb import schema
from backbeat.sinks.duckdb.connections import Cursors
from backbeat.sinks.sql.reader import SqlReader

log = logging.getLogger(__name__)

RETRY_S: Final = 1.0
COMMIT_COUNTERS: Final = frozenset({q.name_of(q.BatchTotals), q.name_of(q.LatestBatch)})
"""Not claimed before the first commit: ``/health`` then says ``batch_id: null``."""


class PendingReader(q.Reader):
    """Empty answers until ``opener`` succeeds, then the reader it opened."""

    def __init__(self, opener: Callable[[], q.Reader], retry_s: float = RETRY_S) -> None:
        self._opener = opener
        self._retry_s = retry_s
        self._real: q.Reader | None = None
        self._next_try = 0.0
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._empty_db = duckdb.connect(config={"threads": 1})
        schema.prepare(self._empty_db, Path(":memory:"))
        self._empty = SqlReader(Cursors(self._empty_db))

    @property
    def ready(self) -> bool:
        """Has the store committed (is the real reader open)?"""
        return self._current() is not None

    def _current(self) -> q.Reader | None:
        """The real reader, opened here when the store is ready (tried once per retry)."""
        with self._lock:
            if self._real is not None or self._closed.is_set():
                return self._real
            now = time.monotonic()
            if now < self._next_try:
                return None
            try:
                self._real = self._opener()
            except StoreNotReadyError:
                self._next_try = now + self._retry_s
                return None
            log.info("the store holds results now: serving them")
            return self._real

    def answers(self) -> frozenset[str]:
        real = self._current()
        if real is not None:
            return real.answers()
        return self._empty.answers() - COMMIT_COUNTERS

    def filters(self) -> frozenset[str]:
        real = self._current()
        return real.filters() if real is not None else self._empty.filters()

    def run(self, query: q.Query) -> pa.Table:
        real = self._current()
        if real is not None:
            return real.run(query)
        if q.name_of(query) not in self.answers():
            raise self.refuse(query)
        return self._empty.run(query)

    def wait_for_commit(self, after: int, timeout_s: float) -> int | None:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            real = self._current()
            if real is not None:
                return real.wait_for_commit(after, left)
            if self._closed.wait(min(left, self._retry_s)):
                break
        return after

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            real, self._real = self._real, None
        if real is not None:
            real.close()
        self._empty_db.close()
