"""Where the embedded store's queries run: this process's open connection, or the file.

:class:`Cursors` gives each reading thread a cursor of its own on the connection the writing
process holds (DuckDB connections are not shared between threads), so readers never wait for
the engine's connection. :class:`Files` opens the file read-only for each query (a store
another process writes; members of a consumer group hold it only while they commit, so a query
waits for them briefly).

Next: ``../sql/reader.py`` (the named queries over these).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from backbeat.errors import StoreError, StoreLockedError
from backbeat.sinks.duckdb.schema import require_schema
from backbeat.sinks.sql.connections import Params
from backbeat.sinks.sql.dialect import DUCKDB, Dialect


class Cursors:
    """Per-thread cursors on a connection this process holds (DuckDB connections are not
    shared between threads; a cursor of its own lets a reader run beside the engine)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._local = threading.local()

    @property
    def dialect(self) -> Dialect:
        return DUCKDB

    def wait_for_commit(self, after: int, timeout_s: float) -> int | None:
        return None  # a DuckDB file announces nothing: readers poll

    def sql(self, query: str, params: Params = ()) -> pa.Table:
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            try:
                cur = self._local.cursor = self._con.cursor()
            except duckdb.Error as exc:
                raise StoreError(f"the store was closed ({exc})") from exc
        try:
            return cur.sql(query, params=list(params)).to_arrow_table()
        except duckdb.Error as exc:
            raise StoreError(f"read query failed: {exc}") from exc


class Files:
    """Opens the store file read-only for each query (another process writes it; members of
    a consumer group hold it only while they commit, so a query waits for them briefly)."""

    def __init__(self, path: Path, wait_s: float = 5.0) -> None:
        self._path = path
        self._wait_s = wait_s
        self._checked = False  # the file's schema is this backbeat's

    @property
    def dialect(self) -> Dialect:
        return DUCKDB

    def wait_for_commit(self, after: int, timeout_s: float) -> int | None:
        return None  # a DuckDB file announces nothing: readers poll

    @contextlib.contextmanager
    def _open(self) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + self._wait_s
        pause = 0.005
        while True:
            try:
                con = duckdb.connect(str(self._path), read_only=True)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise StoreError(f"cannot open the store {str(self._path)!r}: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise StoreLockedError(
                        f"the store {str(self._path)!r} stayed in use by another process for "
                        f"{self._wait_s:g} s"
                    ) from exc
                time.sleep(pause)
                pause = min(pause * 2, 0.2)
        try:
            yield con
        finally:
            con.close()

    def sql(self, query: str, params: Params = ()) -> pa.Table:
        with self._open() as con:
            if not self._checked:
                require_schema(con, self._path, current=True)
                self._checked = True
            try:
                return con.sql(query, params=list(params)).to_arrow_table()
            except duckdb.Error as exc:
                raise StoreError(f"read query failed: {exc}") from exc
