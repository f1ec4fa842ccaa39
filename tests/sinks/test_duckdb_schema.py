"""The embedded store's schema: a store written by backbeat 0.1 (schema 1) is migrated on
open and streaming goes on exactly; a newer store is refused in one line; a file killed
before its tables were created is not a store yet.

Next: ``backbeat.sinks.duckdb.schema`` (the migrations), ``test_suite.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from backbeat.analytics.metrics import SONG_SAYS
from backbeat.errors import StoreError, StoreNotReadyError
from backbeat.sinks.duckdb import schema
from backbeat.sinks.duckdb.store import DuckDBStore
from tests.support.eventlog import generate, write_log
from tests.support.harness import csv_problems, metric_mismatches, run_once
from tests.support.oracle import compute


def _as_version_1(path: Path, csv_size: int) -> None:
    """Rewrite a store as backbeat 0.1 left it: no ``meta_schema``, the CSV's mark in
    ``meta_csv`` (path, windows before and after the last append, sizes before and after),
    engagement without the counts of what listens said, listens without ``ms_played``, songs
    with their plays only."""
    con = duckdb.connect(str(path))
    try:
        (mark,) = (json.loads(m) for (m,) in con.execute("SELECT mark FROM meta_sinks").fetchall())
        con.execute(
            "CREATE TABLE meta_csv (path VARCHAR PRIMARY KEY, until_before BIGINT, "
            "until BIGINT, size_before BIGINT, size_after BIGINT)"
        )
        con.execute(
            "INSERT INTO meta_csv VALUES (?, ?, ?, ?, ?)",
            [mark["path"], mark["until_before"], mark["until"], mark["size_before"], csv_size],
        )
        con.execute("DROP TABLE meta_sinks")
        con.execute("DROP TABLE meta_schema")
        for column in ("pct_count", "completed_count", "skipped_count"):
            con.execute(f"ALTER TABLE m_engagement_minute DROP COLUMN {column}")
        con.execute("ALTER TABLE listens DROP COLUMN ms_played")
        for column in SONG_SAYS:
            con.execute(f"ALTER TABLE m_song_minute DROP COLUMN {column}")
    finally:
        con.close()


def test_a_version_1_store_is_migrated_and_the_stream_goes_on_exactly(tmp_path: Path) -> None:
    log = write_log(tmp_path / "in", generate(150, 20, seed=31), seed=32)
    expected = compute(log.directory, log.malformed_offsets())
    store, out = tmp_path / "store", tmp_path / "results.csv"
    run_once(log.directory, store, 137, out, max_events=2_500)
    _as_version_1(store / "backbeat.duckdb", out.stat().st_size)
    con = duckdb.connect(str(store / "backbeat.duckdb"), read_only=True)
    assert schema.version_of(con) == 1
    con.close()

    run_once(log.directory, store, 137, out)  # opens (and migrates), then finishes the log

    con = duckdb.connect(str(store / "backbeat.duckdb"), read_only=True)
    try:
        assert schema.version_of(con) == schema.VERSION
        keys = [k for (k,) in con.execute("SELECT key FROM meta_sinks").fetchall()]
        assert keys == [f"csv:{out.resolve()}"]
    finally:
        con.close()
    problems = metric_mismatches(store, expected) + csv_problems(out, expected, complete=True)
    assert not problems, "\n".join(problems)


def test_a_store_from_a_newer_backbeat_is_refused_in_one_line(tmp_path: Path) -> None:
    DuckDBStore.at(str(tmp_path)).close()
    con = duckdb.connect(str(tmp_path / "backbeat.duckdb"))
    con.execute("UPDATE meta_schema SET version = ?", [schema.VERSION + 1])
    con.close()
    with pytest.raises(StoreError, match="written by a newer backbeat"):
        DuckDBStore.at(str(tmp_path))


def test_an_empty_file_is_not_a_store_yet(tmp_path: Path) -> None:
    duckdb.connect(str(tmp_path / "backbeat.duckdb")).close()
    con = duckdb.connect(str(tmp_path / "backbeat.duckdb"), read_only=True)
    try:
        with pytest.raises(StoreNotReadyError, match="holds no results yet"):
            schema.require_schema(con, tmp_path / "backbeat.duckdb")
    finally:
        con.close()
    DuckDBStore.at(str(tmp_path)).close()  # a writer makes it one, in one transaction
