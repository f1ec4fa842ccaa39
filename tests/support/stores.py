"""Reading a store in tests: its results through the reader contract (any backend), or the
SQL stores' tables directly (tests of those backends' tables).

Next: ``harness.py`` (comparing stores with the oracle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from backbeat.analytics.metrics import METRICS
from backbeat.sinks.duckdb.store import store_file
from backbeat.sinks.queries import MetricRows, Query
from backbeat.sinks.registry import open_reader


def ask(store: Path | str, query: Query) -> list[dict[str, Any]]:
    """The rows a store's reader answers to ``query``."""
    reader = open_reader(str(store))
    try:
        rows: list[dict[str, Any]] = reader.run(query).to_pylist()
    finally:
        reader.close()
    return rows


def metric_rows(store: Path | str, name: str) -> list[dict[str, Any]]:
    """One metric's merged rows, sorted by its keys."""
    return ask(store, MetricRows(name=name))


def all_metrics(store: Path | str) -> dict[str, list[dict[str, Any]]]:
    """Every metric's merged rows."""
    return {m.name: metric_rows(store, m.name) for m in METRICS}


def duck_sql(store: Path | str, sql: str) -> list[dict[str, Any]]:
    """A read-only SQL query on the embedded store's file (its tables, for backend tests)."""
    con = duckdb.connect(str(store_file(str(store))), read_only=True)
    try:
        rel = con.execute(sql)
        names = [d[0] for d in rel.description]
        return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]
    finally:
        con.close()


def store_sql(store: Path | str, sql: str) -> list[dict[str, Any]]:
    """A read-only SQL query on a SQL store's own tables: the embedded store's file, or a
    ``postgresql://`` database (the same table names in both)."""
    if not str(store).startswith(("postgresql://", "postgres://")):
        return duck_sql(store, sql)
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(str(store), row_factory=dict_row) as con:
        return con.execute(sql.encode()).fetchall()
