"""How the API reads a store: one small interface, two ways to hold the store.

``Reader.sql(query, params)`` answers a read query from any thread. ``LocalReader`` serves
from the process that writes the store (``backbeat demo``, ``stream --serve``): each thread
gets its own cursor on the open store, so readers never wait for the engine's connection.
``FileReader`` serves a store file from another process (``backbeat serve --store``): it
opens the file read-only for each query, which works while the store is idle or written by
shared-mode writers (``stream --group``) between their commits.

Next: ``hub.py`` (knowing when a batch was committed), ``api.py`` (the routes).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa

from backbeat.errors import StoreError
from backbeat.sinks.duckdb_store import DEFAULT_FILE, DuckDBStore


class Reader(Protocol):
    """Read access to a store: bound parameters only."""

    def sql(self, query: str, params: tuple[object, ...] = ()) -> pa.Table:
        """Run ``query``; raise :class:`StoreError` when the store cannot answer."""
        ...  # pragma: no cover


class LocalReader:
    """Reads the store this process has open, one cursor per reading thread."""

    def __init__(self, store: DuckDBStore) -> None:
        if store.cursor() is None:
            raise StoreError("LocalReader needs a store opened exclusive (not shared)")
        self._store = store
        self._local = threading.local()

    def sql(self, query: str, params: tuple[object, ...] = ()) -> pa.Table:
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._store.cursor()
            if cur is None:
                raise StoreError("the store was closed")
            self._local.cursor = cur
        try:
            return cur.sql(query, params=list(params)).to_arrow_table()
        except duckdb.Error as exc:
            raise StoreError(f"read query failed: {exc}") from exc


class FileReader:
    """Reads a store file written by another process, opening it read-only per query."""

    def __init__(self, folder: Path, wait_s: float = 5.0) -> None:
        path = folder / DEFAULT_FILE
        if not path.exists():
            raise StoreError(
                f"no store in {str(folder)!r}: run `backbeat stream` or `backbeat demo` with "
                "--store pointing there first"
            )
        self._store = DuckDBStore(path, read_only=True, shared=True, lock_timeout_s=wait_s)

    def sql(self, query: str, params: tuple[object, ...] = ()) -> pa.Table:
        try:
            return self._store.sql(query, params)
        except duckdb.Error as exc:
            raise StoreError(f"read query failed: {exc}") from exc
