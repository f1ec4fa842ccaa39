"""The PostgreSQL store's tables, and the versioned migrations that create and upgrade them.

The tables have the names and columns of the embedded store's (``../duckdb/schema.py``), so
one set of answers (``../sql/answers.py``) reads both: metric tables hold partial rows,
appended by ``COPY`` and merged on read, compacted now and then (``store.py``); text is
collated ``"C"`` (byte order, as DuckDB sorts, so rankings break ties alike in both stores).
``meta_compaction`` remembers the earliest window appended to since the last compaction.

:func:`migrate` runs at every writer's start, in one transaction under an advisory lock, so
members of a group starting together do not race: the first creates or upgrades, the others
wait and find the schema current. ``meta_schema`` holds the version; a database written by a
newer backbeat is refused with one line. Each entry of ``MIGRATIONS`` moves the schema one
version up; add one, never edit one.

Next: ``store.py`` (the writer), ``reader.py`` (the queries' connections).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import psycopg

from backbeat.analytics.metrics import METRICS, Metric, merged_sql
from backbeat.errors import StoreError, StoreNotReadyError
from backbeat.sinks.postgres.connect import connect, failed
from backbeat.sinks.sql.pieces import metric_table, song_says_added

MIGRATE_LOCK: Final = 0x6261636B62656174  # "backbeat": one advisory lock for migrations
_TYPES: Final = {"VARCHAR": 'TEXT COLLATE "C"', "BIGINT": "BIGINT", "INTEGER": "INTEGER"}
TEXT: Final = 'TEXT COLLATE "C"'


def column_type(duck: str) -> str:
    """The PostgreSQL type of a metric column declared in DuckDB's SQL (``analytics``)."""
    return _TYPES.get(duck) or duck.replace("DECIMAL", "NUMERIC")


def metric_ddl(metric: Metric) -> list[str]:
    """CREATE statements of a metric's table and its index on the window."""
    table = metric_table(metric)
    cols = ", ".join(f"{name} {column_type(typ)}" for name, typ in metric.columns)
    return [
        f"CREATE TABLE {table} ({cols})",
        f"CREATE INDEX {table}_window ON {table} (window_start)",
    ]


def _version_1(cur: psycopg.Cursor[Any]) -> None:
    """The first layout: the embedded store's version 3, one row per metric key."""
    for ddl in (
        'CREATE TABLE meta_partitions (partition TEXT COLLATE "C" PRIMARY KEY, '
        f"topic {TEXT} NOT NULL, position BIGINT NOT NULL, max_ts BIGINT NOT NULL)",
        f"CREATE TABLE meta_seen (topic {TEXT}, event_id {TEXT}, session_id BIGINT, "
        f"item INTEGER, ts BIGINT, partition {TEXT})",
        "CREATE INDEX meta_seen_partition ON meta_seen (partition, topic, ts)",
        f"CREATE TABLE meta_sinks (key {TEXT} PRIMARY KEY, mark TEXT NOT NULL, batch_id BIGINT)",
        "CREATE TABLE meta_batches (batch_id BIGINT PRIMARY KEY, committed_at TIMESTAMPTZ, "
        "events_in BIGINT, accepted BIGINT, duplicates BIGINT, late BIGINT, dead BIGINT, "
        "seconds FLOAT8)",
        f"CREATE TABLE dead_letters (batch_id BIGINT, topic {TEXT}, partition {TEXT}, "
        f'"offset" BIGINT, reason {TEXT}, raw BYTEA, received_at TIMESTAMPTZ)',
        "CREATE INDEX dead_letters_batch ON dead_letters (batch_id)",
        f"CREATE TABLE listens (batch_id BIGINT, ts BIGINT, user_id BIGINT, session_id BIGINT, "
        f"item INTEGER, level {TEXT}, gender {TEXT}, state {TEXT}, artist {TEXT}, "
        f"song {TEXT}, track_id {TEXT}, genre {TEXT}, platform {TEXT}, country {TEXT}, "
        f"mood {TEXT}, listen_pct FLOAT8, completed BOOLEAN, skipped BOOLEAN, rating FLOAT8, "
        "ms_played BIGINT)",
        "CREATE INDEX listens_ts ON listens (ts)",
        "CREATE INDEX listens_batch ON listens (batch_id)",
        "CREATE TABLE meta_compaction (id INTEGER PRIMARY KEY, low BIGINT, batches INTEGER)",
    ):
        cur.execute(ddl.encode())
    for metric in METRICS:
        for ddl in metric_ddl(metric):
            cur.execute(ddl.encode())


def _version_2(cur: psycopg.Cursor[Any]) -> None:
    """The shelf (``shelf.py``: versioned blobs such as trained models) and listens by
    listener (the recommender's ``user-listens``)."""
    for ddl in (
        f"CREATE TABLE shelf (name {TEXT}, version BIGINT, created_ms BIGINT NOT NULL, "
        "about JSONB NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (name, version))",
        "CREATE INDEX listens_user ON listens (user_id, ts)",
    ):
        cur.execute(ddl.encode())


def _version_3(cur: psycopg.Cursor[Any]) -> None:
    """``song_minute`` keeps skips, completions and % listened beside plays (the songs people
    skip), filled from the kept listens (a new database: nothing to fill)."""
    for sql in song_says_added():
        cur.execute(sql.encode())


MIGRATIONS: Final[tuple[Callable[[psycopg.Cursor[Any]], None], ...]] = (
    _version_1,
    _version_2,
    _version_3,
)
"""``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``."""
VERSION: Final = len(MIGRATIONS)


def version_of(cur: psycopg.Cursor[Any]) -> int | None:
    """The database's schema version; None when it holds no backbeat tables."""
    found = cur.execute("SELECT to_regclass('meta_schema') IS NOT NULL").fetchone()
    if not found or not found[0]:
        return None
    row = cur.execute("SELECT max(version) FROM meta_schema").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrated(location: str, where: str) -> tuple[psycopg.Connection[Any], int]:
    """A new autocommit connection to ``location`` with the schema migrated first, and the
    version the schema was at (:func:`migrate`).

    Raises:
        StoreError: the database cannot be reached or prepared, or is newer than this backbeat.
    """
    con = connect(location, autocommit=True)
    try:
        return con, migrate(con, where)
    except psycopg.Error as exc:
        con.close()
        raise failed("preparing", location, exc) from None
    except BaseException:
        con.close()
        raise


def migrate(con: psycopg.Connection[Any], where: str) -> int:
    """Create or upgrade the schema in one transaction under the migration lock; return the
    version it was at (0: new).

    Raises:
        StoreError: the database was written by a newer backbeat.
    """
    with con.transaction(), con.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        found = version_of(cur)
        if found is None:
            cur.execute("CREATE TABLE meta_schema (version INTEGER NOT NULL)")
            cur.execute("INSERT INTO meta_schema VALUES (0)")
            found = 0
        if found > VERSION:
            raise StoreError(
                f"the store {where} was written by a newer backbeat (schema {found}, this one "
                f"knows {VERSION}): upgrade backbeat, or use another --store"
            )
        for step in MIGRATIONS[found:]:
            step(cur)
        cur.execute("UPDATE meta_schema SET version = %s", (VERSION,))
    return found


def require_schema(cur: psycopg.Cursor[Any], where: str) -> None:
    """Refuse, in one line, a database that is not (yet) a store or has another version.

    Raises:
        StoreNotReadyError: no backbeat tables yet; StoreError: another schema version.
    """
    found = version_of(cur)
    if not found:
        raise StoreNotReadyError(
            f"{where} holds no results yet: run `backbeat stream` or `backbeat demo` with "
            "--store there first"
        )
    if found > VERSION:
        raise StoreError(
            f"the store {where} was written by a newer backbeat (schema {found}): upgrade "
            "backbeat to read it"
        )
    if found < VERSION:
        raise StoreError(
            f"the store {where} was written by an older backbeat (schema {found}): run "
            "`backbeat stream` (or `demo`) on it once to migrate it, then read it"
        )


def compact_sql(metric: Metric) -> str:
    """Fold a metric's partial rows of windows from ``%s`` on into one row per key (one
    statement: the deleted rows, merged, go back in)."""
    table = metric_table(metric)
    return (
        f"WITH gone AS (DELETE FROM {table} WHERE window_start >= %s RETURNING *) "
        f"INSERT INTO {table} {merged_sql(metric, 'gone')}"
    )
