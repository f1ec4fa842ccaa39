"""Where the PostgreSQL store's queries run: a pool of connections (``serve`` answers many
requests at once), and a listening connection that hears each commit.

Queries are the SQL stores' shared answers (``../sql/answers.py``) in the PostgreSQL
dialect; their ``?`` placeholders become psycopg's. Every connection is in autocommit, so a
read never holds a transaction open against the writers. :meth:`PostgresConnections.
wait_for_commit` waits on ``LISTEN`` for the store's ``pg_notify`` at each commit, so the
API's live stream is pushed the moment a member commits, on any machine.

Next: ``store.py`` (the writer), ``../sql/reader.py`` (the reader over these).
"""

from __future__ import annotations

import threading
from typing import Any, Final

import psycopg
import pyarrow as pa
from psycopg_pool import ConnectionPool, PoolTimeout

from backbeat.errors import StoreError
from backbeat.sinks.postgres.arrow import to_arrow
from backbeat.sinks.postgres.connect import connect, failed, redacted, settings
from backbeat.sinks.postgres.schema import require_schema
from backbeat.sinks.sql.connections import Params
from backbeat.sinks.sql.dialect import POSTGRES, Dialect

CHANNEL: Final = "backbeat_commits"
"""The notification channel a commit announces its batch id on."""
POOL_SIZE: Final = 8
WAIT_FOR_POOL_S: Final = 10.0


class PostgresConnections:
    """A pool of read connections to one PostgreSQL store (opened at the first query)."""

    def __init__(self, location: str, pool_size: int = POOL_SIZE) -> None:
        self._location = location
        self._pool_size = pool_size
        self._pool: ConnectionPool[Any] | None = None
        self._lock = threading.Lock()
        self._sql: dict[str, str] = {}
        self._listener: psycopg.Connection[Any] | None = None
        self._closed = False

    @property
    def dialect(self) -> Dialect:
        return POSTGRES

    def _opened(self) -> ConnectionPool[Any]:
        with self._lock:
            if self._closed:
                raise StoreError("the store's reader was closed")
            if self._pool is None:
                connect(self._location).close()  # fails fast, in one line, where the pool retries
                kwargs = settings(self._location)
                pool: ConnectionPool[Any] = ConnectionPool(
                    kwargs.pop("conninfo"),
                    kwargs={**kwargs, "autocommit": True},
                    min_size=1,
                    max_size=self._pool_size,
                    open=False,
                    name="backbeat-reader",
                )
                try:
                    pool.open(wait=True, timeout=WAIT_FOR_POOL_S)
                except PoolTimeout:
                    pool.close()
                    raise StoreError(
                        f"cannot connect to the store {redacted(self._location)!r} within "
                        f"{WAIT_FOR_POOL_S:g} s"
                    ) from None
                self._pool = pool
            return self._pool

    def check(self) -> None:
        """Refuse, in one line, a database without a current backbeat schema.

        Raises:
            StoreNotReadyError, StoreError: see ``schema.require_schema``.
        """
        with self._opened().connection() as con, con.cursor() as cur:
            require_schema(cur, repr(redacted(self._location)))

    def sql(self, query: str, params: Params = ()) -> pa.Table:
        text = self._sql.get(query)
        if text is None:
            text = self._sql[query] = query.replace("%", "%%").replace("?", "%s")
        try:
            with self._opened().connection(timeout=WAIT_FOR_POOL_S) as con, con.cursor() as cur:
                cur.execute(text.encode(), params)
                return to_arrow(cur)
        except PoolTimeout:
            raise StoreError("the store is busy: no free connection within 10 s") from None
        except psycopg.Error as exc:
            raise failed("reading", self._location, exc) from None

    def wait_for_commit(self, after: int, timeout_s: float) -> int | None:
        """Wait until a commit newer than ``after`` is announced, at most ``timeout_s``; the
        newest batch id heard (``after`` when none)."""
        try:
            if self._listener is None or self._listener.closed or self._listener.broken:
                self._listener = connect(self._location, autocommit=True)
                self._listener.execute(f"LISTEN {CHANNEL}")
            newest = after
            for note in self._listener.notifies(timeout=timeout_s, stop_after=1):
                newest = max(newest, int(note.payload))
            return newest
        except psycopg.Error as exc:
            raise failed("listening to", self._location, exc) from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
