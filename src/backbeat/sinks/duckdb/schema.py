"""The embedded store's tables, their version, and the migrations between versions.

One DuckDB file holds the results (``m_<metric>`` partial aggregates, ``listens``,
``dead_letters``) and the checkpoint (``meta_partitions`` positions and watermarks,
``meta_seen`` de-dup keys, ``meta_sinks`` resume marks of secondary sinks, ``meta_batches``).
``meta_schema`` says which layout the file has. :func:`prepare` creates a new store or
migrates an older one in ONE transaction, so a process killed while preparing leaves the file
as it was; a store written by a newer backbeat is refused with one line.

Versions: 1 (until 0.1: no ``meta_schema``, the CSV's mark in ``meta_csv``); 2 (marks of
every secondary sink in ``meta_sinks``); 3 (engagement counts the listens that say how much
was played, finished or skipped: ``pct_count``, ``completed_count``, ``skipped_count``, every
listen before; listens keep ``ms_played``); 4 (``song_minute`` keeps skips, completions and %
listened beside plays, filled from the kept listens).

Next: ``store.py`` (the writer), ``reader.py`` (the queries).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import duckdb

from backbeat.analytics.metrics import METRICS
from backbeat.errors import StoreError, StoreNotReadyError
from backbeat.sinks.sql.pieces import metric_table, song_says_added

VERSION: Final = 4

_TABLES: Final = (
    "CREATE TABLE meta_schema (version INTEGER NOT NULL)",
    "CREATE TABLE meta_partitions (partition VARCHAR PRIMARY KEY, topic VARCHAR NOT NULL, "
    "position BIGINT NOT NULL, max_ts BIGINT NOT NULL)",
    "CREATE TABLE meta_seen (topic VARCHAR, event_id VARCHAR, session_id BIGINT, item INTEGER, "
    "ts BIGINT, partition VARCHAR)",
    "CREATE TABLE meta_sinks (key VARCHAR PRIMARY KEY, mark VARCHAR NOT NULL, batch_id BIGINT)",
    "CREATE TABLE meta_batches (batch_id BIGINT PRIMARY KEY, committed_at TIMESTAMPTZ, "
    "events_in BIGINT, accepted BIGINT, duplicates BIGINT, late BIGINT, dead BIGINT, "
    "seconds DOUBLE)",
    "CREATE TABLE dead_letters (batch_id BIGINT, topic VARCHAR, partition VARCHAR, "
    '"offset" BIGINT, reason VARCHAR, raw BLOB, received_at TIMESTAMPTZ)',
    "CREATE TABLE listens (batch_id BIGINT, ts BIGINT, user_id BIGINT, session_id BIGINT, "
    "item INTEGER, level VARCHAR, gender VARCHAR, state VARCHAR, artist VARCHAR, song VARCHAR, "
    "track_id VARCHAR, genre VARCHAR, platform VARCHAR, country VARCHAR, mood VARCHAR, "
    "listen_pct DOUBLE, completed BOOLEAN, skipped BOOLEAN, rating DOUBLE, ms_played BIGINT)",
)


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'")
    return {name for (name,) in rows.fetchall()}


def version_of(con: duckdb.DuckDBPyConnection) -> int | None:
    """The file's schema version; None for a file without backbeat's tables."""
    tables = _tables(con)
    if "meta_schema" in tables:
        return int(con.execute("SELECT max(version) FROM meta_schema").fetchall()[0][0])
    return 1 if "meta_batches" in tables else None


def prepare(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Create the tables of a new store, or migrate an older one, in one transaction.

    Raises:
        StoreError: the file was written by a newer backbeat.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        version = version_of(con)
        if version is None:
            for ddl in _TABLES:
                con.execute(ddl)
            for metric in METRICS:
                cols = ", ".join(f"{name} {typ}" for name, typ in metric.columns)
                con.execute(f"CREATE TABLE {metric_table(metric)} ({cols})")
            con.execute("INSERT INTO meta_schema VALUES (?)", [VERSION])
        elif version > VERSION:
            raise StoreError(
                f"the store {str(path)!r} was written by a newer backbeat (schema {version}, "
                f"this one knows {VERSION}): upgrade backbeat, or use another --store"
            )
        else:
            if version == 1:
                _from_1(con)
            if version <= 2:
                _from_2(con)
            if version <= 3:
                for sql in song_says_added():
                    con.execute(sql)
            con.execute("UPDATE meta_schema SET version = ?", [VERSION])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _from_1(con: duckdb.DuckDBPyConnection) -> None:
    """Version 1 -> 2: the CSV mark moves into ``meta_sinks`` (caller holds a transaction)."""
    con.execute(_TABLES[0])
    con.execute(_TABLES[3])
    con.execute("ALTER TABLE meta_seen ADD COLUMN IF NOT EXISTS partition VARCHAR")
    if "meta_csv" in _tables(con):
        rows = con.execute("SELECT path, until_before, until, size_before FROM meta_csv").fetchall()
        for path, until_before, until, size_before in rows:
            mark = {"path": path, "first": None, "until_before": until_before, "until": until,
                    "size_before": size_before}  # fmt: skip
            con.execute(
                "INSERT INTO meta_sinks VALUES (?, ?, NULL)", [f"csv:{path}", json.dumps(mark)]
            )
        con.execute("DROP TABLE meta_csv")
    con.execute("INSERT INTO meta_schema VALUES (2)")


def _from_2(con: duckdb.DuckDBPyConnection) -> None:
    """Version 2 -> 3: what listens said, counted in engagement (every listen said it before),
    and ``ms_played`` in listens (the caller holds a transaction)."""
    for column in ("pct_count", "completed_count", "skipped_count"):
        con.execute(f"ALTER TABLE m_engagement_minute ADD COLUMN {column} BIGINT")
        con.execute(f"UPDATE m_engagement_minute SET {column} = listens")
    con.execute("ALTER TABLE listens ADD COLUMN ms_played BIGINT")


def require_schema(con: duckdb.DuckDBPyConnection, path: Path, current: bool = False) -> None:
    """Refuse, in one line, a file that is not (yet) a store, is newer than this backbeat, or
    (``current``: a reader, which cannot migrate) is older.

    Raises:
        StoreNotReadyError: no backbeat tables (another DuckDB file, or an empty one).
        StoreError: a schema this backbeat does not read.
    """
    version = version_of(con)
    if version is None:
        raise StoreNotReadyError(
            f"{str(path)!r} holds no results yet (created but never committed to, or not a "
            "backbeat store): run `backbeat stream` or `backbeat demo` with --store there"
        )
    if version > VERSION:
        raise StoreError(
            f"the store {str(path)!r} was written by a newer backbeat (schema {version}): "
            "upgrade backbeat to read it"
        )
    if current and version < VERSION:
        raise StoreError(
            f"the store {str(path)!r} was written by an older backbeat (schema {version}): "
            "run `backbeat stream` (or `demo`) on it once to migrate it, then read it"
        )
