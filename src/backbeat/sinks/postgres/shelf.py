"""The PostgreSQL store's shelf: each version of a named blob is one row of the table
``shelf (name, version, created_ms, about JSONB, data BYTEA)`` in the store's database
(``schema.py``, migration 2).

:meth:`PostgresShelf.put` is one transaction: it takes a transaction-level advisory lock for
the name, numbers the version one past the highest and inserts the row, so concurrent writers
(threads or processes on any machine) get consecutive numbers, and a writer killed or cut off
mid-put leaves nothing (its transaction never commits). Opening a shelf migrates the schema
as the store's writer does, so a shelf works on a fresh database too. Messages name the
location with its password masked (``connect.redacted``).

Next: ``../shelf.py`` (the contract), ``../duckdb/shelf.py`` (the same as files).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

import psycopg
from psycopg.types.json import Jsonb

from backbeat.errors import ConfigError
from backbeat.sinks.duckdb.shelf import checked_name
from backbeat.sinks.postgres import schema
from backbeat.sinks.postgres.connect import failed, redacted, settings
from backbeat.sinks.shelf import Shelf, Shelved

SHELF_LOCK: Final = 0x62626B73  # "bbks": the advisory lock class of shelf puts (one per name)


class PostgresShelf(Shelf):
    """Versioned blobs as rows of the store database's ``shelf`` table."""

    def __init__(self, location: str) -> None:
        """Connect, and create or migrate the schema.

        Raises:
            ConfigError: a malformed URL; StoreError: no server, refused, or a newer schema.
        """
        settings(location)  # a malformed URL fails here, before any connection
        self.location = location
        self._where = repr(redacted(location))
        self._lock = threading.Lock()
        self._con: psycopg.Connection[Any] | None = None
        with self._lock:
            self._connection()

    @classmethod
    def at(cls, location: str) -> PostgresShelf:
        """The shelf in the store's database at ``location`` (a ``postgresql://`` URL)."""
        return cls(location)

    def _connection(self) -> psycopg.Connection[Any]:
        """The open connection (the schema migrated first); a new one after the last broke."""
        if self._con is not None and not self._con.closed and not self._con.broken:
            return self._con
        self._con, _ = schema.migrated(self.location, self._where)
        return self._con

    @contextmanager
    def _transaction(self, action: str) -> Iterator[psycopg.Cursor[Any]]:
        """One transaction on the shelf's connection (one caller at a time)."""
        with self._lock:
            con = self._connection()
            try:
                with con.transaction(), con.cursor() as cur:
                    yield cur
            except psycopg.Error as exc:
                raise failed(action, self.location, exc) from None

    def put(self, name: str, data: bytes, about: Mapping[str, Any]) -> int:
        checked_name(name)
        with self._transaction("putting on the shelf of") as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s::INT4, hashtext(%s))", (SHELF_LOCK, name))
            row = cur.execute(
                "SELECT coalesce(max(version), 0) + 1 FROM shelf WHERE name = %s", (name,)
            ).fetchone()
            version = int(row[0]) if row else 1
            cur.execute(
                "INSERT INTO shelf (name, version, created_ms, about, data) "
                "VALUES (%s, %s, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, %s, %s)",
                (name, version, Jsonb(dict(about)), data),
            )
        return version

    def latest(self, name: str) -> Shelved | None:
        checked_name(name)
        with self._transaction("reading the shelf of") as cur:
            row = cur.execute(
                "SELECT version, created_ms, about, data FROM shelf WHERE name = %s "
                "ORDER BY version DESC LIMIT 1",
                (name,),
            ).fetchone()
        if row is None:
            return None
        version, created_ms, about, data = row
        return Shelved(name, int(version), int(created_ms), bytes(data), dict(about))

    def version(self, name: str) -> int | None:
        checked_name(name)
        with self._transaction("reading the shelf of") as cur:
            row = cur.execute("SELECT max(version) FROM shelf WHERE name = %s", (name,)).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def prune(self, name: str, keep: int) -> int:
        checked_name(name)
        if keep < 1:
            raise ConfigError(f"prune keep={keep}: keep at least the newest version (1)")
        with self._transaction("pruning the shelf of") as cur:
            cur.execute(
                "DELETE FROM shelf WHERE name = %s AND version NOT IN (SELECT version FROM shelf "
                "WHERE name = %s ORDER BY version DESC LIMIT %s)",
                (name, name, keep),
            )
            return max(cur.rowcount, 0)

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
