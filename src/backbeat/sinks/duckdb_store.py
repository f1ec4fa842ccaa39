"""The embedded store: one DuckDB file holding results, dead letters and engine state.

Partial aggregates are *appended* per batch (a plain insert, no per-key upsert) and merged
on read; every ``compact_every`` batches the partial rows of each metric are folded into one
row per key, inside the same transaction as the batch. Positions, watermarks, de-dup keys,
the CSV mark and batch statistics live in ``meta_*`` tables next to the results, so one
``COMMIT`` moves all of them together.

Next: ``base.py`` (the contract), ``backbeat.engine.pipeline`` (the writer),
``backbeat.serve.queries`` (the readers).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa

from backbeat.analytics.metrics import BY_NAME, METRICS, Metric, merged_sql
from backbeat.engine.dedup import SEEN_SCHEMA
from backbeat.errors import StoreError, StoreLockedError
from backbeat.sinks.base import (
    Commit,
    CsvMark,
    EngineState,
    PartitionState,
    Store,
)

log = logging.getLogger(__name__)

DEFAULT_FILE: Final = "backbeat.duckdb"

_META_DDL: Final = (
    "CREATE TABLE IF NOT EXISTS meta_partitions (partition VARCHAR PRIMARY KEY, "
    "topic VARCHAR NOT NULL, position BIGINT NOT NULL, max_ts BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta_seen (topic VARCHAR, event_id VARCHAR, "
    "session_id BIGINT, item INTEGER, ts BIGINT)",
    "CREATE TABLE IF NOT EXISTS meta_csv (path VARCHAR PRIMARY KEY, until_before BIGINT, "
    "until BIGINT, size_before BIGINT, size_after BIGINT)",
    "CREATE TABLE IF NOT EXISTS meta_batches (batch_id BIGINT PRIMARY KEY, "
    "committed_at TIMESTAMPTZ, events_in BIGINT, accepted BIGINT, duplicates BIGINT, "
    "late BIGINT, dead BIGINT, seconds DOUBLE)",
    "CREATE TABLE IF NOT EXISTS dead_letters (batch_id BIGINT, topic VARCHAR, "
    'partition VARCHAR, "offset" BIGINT, reason VARCHAR, raw BLOB, received_at TIMESTAMPTZ)',
)


def _table(metric: Metric) -> str:
    return f"m_{metric.name}"


def merged_view(metric: Metric) -> str:
    """A subquery of the metric's final rows, for read queries against this store."""
    return f"({merged_sql(metric, _table(metric))})"


class DuckDBStore(Store):
    """Results and engine state in one DuckDB file (single writer)."""

    def __init__(self, path: Path, *, read_only: bool = False, compact_every: int = 50) -> None:
        self.path = path
        self._compact_every = compact_every
        try:
            if not read_only:
                path.parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreLockedError(
                    f"the store {str(path)!r} is in use by another process; stop it or use "
                    "another --store"
                ) from exc
            raise StoreError(f"cannot open the store {str(path)!r}: {exc}") from exc
        if not read_only:
            # Checkpoints rewrite the file; fewer, larger ones keep commit latency flat.
            self._con.execute("SET checkpoint_threshold = '256MB'")
            self._create()

    @classmethod
    def in_dir(cls, directory: Path, **kwargs: int | bool) -> DuckDBStore:
        """The store file inside a ``--store`` folder."""
        return cls(directory / DEFAULT_FILE, **kwargs)  # type: ignore[arg-type]

    def _create(self) -> None:
        for ddl in _META_DDL:
            self._con.execute(ddl)
        for metric in METRICS:
            cols = ", ".join(f"{name} {typ}" for name, typ in metric.columns)
            self._con.execute(f"CREATE TABLE IF NOT EXISTS {_table(metric)} ({cols})")

    # ------------------------------------------------------------------ state

    def load_state(self) -> EngineState:
        rows = self._con.execute(
            "SELECT partition, topic, position, max_ts FROM meta_partitions"
        ).fetchall()
        partitions = {p: PartitionState(t, pos, mts) for p, t, pos, mts in rows}
        seen = (
            self._con.sql("SELECT topic, event_id, session_id, item, ts FROM meta_seen")
            .to_arrow_table()
            .cast(SEEN_SCHEMA)
        )
        # fetchall, not fetchone: DuckDB keeps a half-read result open on the connection.
        batch = self._con.execute("SELECT coalesce(max(batch_id), 0) FROM meta_batches").fetchall()[
            0
        ]
        csv_rows = self._con.execute(
            "SELECT path, until_before, until, size_before, size_after FROM meta_csv"
        ).fetchall()
        return EngineState(
            batch_id=int(batch[0]) if batch else 0,
            partitions=partitions,
            seen=seen,
            csv={row[0]: CsvMark(*row) for row in csv_rows},
        )

    # ------------------------------------------------------------------ commit

    def commit(self, commit: Commit) -> None:
        con = self._con
        try:
            con.execute("BEGIN TRANSACTION")
            for metric in METRICS:
                partial = commit.partials.get(metric.name)
                if partial is not None and partial.num_rows:
                    con.register("_partial", partial)
                    con.execute(f"INSERT INTO {_table(metric)} SELECT * FROM _partial")
                    con.unregister("_partial")
            if commit.dead_letters.num_rows:
                con.register("_dead", commit.dead_letters)
                con.execute(
                    'INSERT INTO dead_letters SELECT ?, topic, partition, "offset", reason, '
                    "raw, ? FROM _dead",
                    [commit.batch_id, datetime.now(UTC)],
                )
                con.unregister("_dead")
            if commit.partitions:
                con.executemany(
                    "INSERT OR REPLACE INTO meta_partitions VALUES (?, ?, ?, ?)",
                    [[p, st.topic, st.position, st.max_ts] for p, st in commit.partitions.items()],
                )
            con.execute("DELETE FROM meta_seen")
            if commit.seen.num_rows:
                con.register("_seen", commit.seen)
                con.execute("INSERT INTO meta_seen SELECT * FROM _seen")
                con.unregister("_seen")
            if commit.csv is not None:
                m = commit.csv
                con.execute(
                    "INSERT OR REPLACE INTO meta_csv VALUES (?, ?, ?, ?, ?)",
                    [m.path, m.until_before, m.until, m.size_before, m.size_after],
                )
            s = commit.stats
            con.execute(
                "INSERT INTO meta_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    commit.batch_id,
                    datetime.now(UTC),
                    s.events_in,
                    s.accepted,
                    s.duplicates,
                    s.late,
                    s.dead,
                    s.seconds,
                ],
            )
            if self._compact_every and commit.batch_id % self._compact_every == 0:
                self._compact()
            con.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            if isinstance(exc, duckdb.Error):
                raise StoreError(f"commit of batch {commit.batch_id} failed: {exc}") from exc
            raise

    def _compact(self) -> None:
        """Fold each metric's partial rows into one row per key (caller holds a transaction)."""
        for metric in METRICS:
            table = _table(metric)
            self._con.execute(f"CREATE TEMP TABLE _compact AS {merged_sql(metric, table)}")
            self._con.execute(f"DELETE FROM {table}")
            self._con.execute(f"INSERT INTO {table} SELECT * FROM _compact")
            self._con.execute("DROP TABLE _compact")

    def reset(self) -> None:
        """Delete every result, dead letter and position (one transaction)."""
        tables = [_table(m) for m in METRICS] + [
            "meta_partitions", "meta_seen", "meta_csv", "meta_batches", "dead_letters"
        ]  # fmt: skip
        self._con.execute("BEGIN TRANSACTION")
        for table in tables:
            self._con.execute(f"DELETE FROM {table}")
        self._con.execute("COMMIT")

    # ------------------------------------------------------------------ read

    def metric(self, name: str, where: str = "", params: tuple[object, ...] = ()) -> pa.Table:
        metric = BY_NAME.get(name)
        if metric is None:
            raise StoreError(f"no metric {name!r}; known: {', '.join(m.name for m in METRICS)}")
        keys = ", ".join(metric.key_names)
        sql = f"SELECT * FROM {merged_view(metric)} {where} ORDER BY {keys}"
        return self._con.sql(sql, params=list(params)).to_arrow_table()

    def sql(self, query: str, params: tuple[object, ...] = ()) -> pa.Table:
        """Run a read query against the store (bound parameters only)."""
        return self._con.sql(query, params=list(params)).to_arrow_table()

    def close(self) -> None:
        self._con.close()
