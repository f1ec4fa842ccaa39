"""The embedded store: one DuckDB file holding results, dead letters and engine state.

Partial aggregates are *appended* per batch (a plain insert, no per-key upsert) and merged
on read; every ``compact_every`` batches the partial rows of each metric are folded into one
row per key, inside the same transaction as the batch. Positions, watermarks, de-dup keys,
the CSV mark and batch statistics live in ``meta_*`` tables next to the results, so one
``COMMIT`` moves all of them together.

A store is opened *exclusive* (one process keeps the file open: the fast path) or *shared*
(every operation opens the file, does its work and closes it, waiting while another process
holds it), so several engine processes of one Kafka consumer group, and readers, can use
one store. Each commit checks, inside its transaction, that its partitions are still where
the process last saw them (see ``base.py``: fencing).

Next: ``base.py`` (the contract), ``backbeat.engine.pipeline`` (the writer),
``backbeat.serve.queries`` (the readers).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa

from backbeat.analytics.metrics import BY_NAME, METRICS, Merge, Metric, merged_sql
from backbeat.engine.dedup import SEEN_SCHEMA
from backbeat.errors import FencedError, StoreError, StoreLockedError
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
    "session_id BIGINT, item INTEGER, ts BIGINT, partition VARCHAR)",
    "ALTER TABLE meta_seen ADD COLUMN IF NOT EXISTS partition VARCHAR",
    "CREATE TABLE IF NOT EXISTS meta_csv (path VARCHAR PRIMARY KEY, until_before BIGINT, "
    "until BIGINT, size_before BIGINT, size_after BIGINT)",
    "CREATE TABLE IF NOT EXISTS meta_batches (batch_id BIGINT PRIMARY KEY, "
    "committed_at TIMESTAMPTZ, events_in BIGINT, accepted BIGINT, duplicates BIGINT, "
    "late BIGINT, dead BIGINT, seconds DOUBLE)",
    "CREATE TABLE IF NOT EXISTS dead_letters (batch_id BIGINT, topic VARCHAR, "
    'partition VARCHAR, "offset" BIGINT, reason VARCHAR, raw BLOB, received_at TIMESTAMPTZ)',
    "CREATE TABLE IF NOT EXISTS listens (batch_id BIGINT, ts BIGINT, user_id BIGINT, "
    "session_id BIGINT, item INTEGER, level VARCHAR, gender VARCHAR, state VARCHAR, "
    "artist VARCHAR, song VARCHAR, track_id VARCHAR, genre VARCHAR, platform VARCHAR, "
    "country VARCHAR, mood VARCHAR, listen_pct DOUBLE, completed BOOLEAN, skipped BOOLEAN, "
    "rating DOUBLE)",
)

# Contract columns of a listen event -> the ``listens`` table, in the table's column order.
_LISTEN_COLUMNS: Final = (
    "ts", "userId", "sessionId", "itemInSession", "level", "gender", "state", "artist", "song",
    "trackId", "genre", "platform", "country", "mood", "listenPct", "completed", "skipped",
    "rating",
)  # fmt: skip


def _table(metric: Metric) -> str:
    return f"m_{metric.name}"


def merged_view(metric: Metric) -> str:
    """A subquery of the metric's final rows, for read queries against this store."""
    return f"({merged_sql(metric, _table(metric))})"


def partial_rows(metric: Metric) -> str:
    """The table of a summed metric's partial rows, for read queries that sum them again.

    Any ``sum`` over them, grouped by some of the metric's keys, equals the same ``sum`` over
    :func:`merged_view`, without first merging every window of the store's history.

    Raises:
        ValueError: the metric is not merged by summing (distinct sets are not additive).
    """
    if metric.merge is not Merge.SUM:
        raise ValueError(f"{metric.name} is merged by {metric.merge}, not by summing")
    return _table(metric)


class DuckDBStore(Store):
    """Results and engine state in one DuckDB file."""

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        shared: bool = False,
        compact_every: int = 50,
        lock_timeout_s: float = 60.0,
    ) -> None:
        """``shared`` opens the file per operation (several processes); else it stays open."""
        self.path = path
        self._read_only = read_only
        self._compact_every = compact_every
        self._lock_timeout_s = lock_timeout_s
        self._con: duckdb.DuckDBPyConnection | None = None
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        con = self._open(wait=shared)
        if not read_only:
            for ddl in _META_DDL:
                con.execute(ddl)
            for metric in METRICS:
                cols = ", ".join(f"{name} {typ}" for name, typ in metric.columns)
                con.execute(f"CREATE TABLE IF NOT EXISTS {_table(metric)} ({cols})")
        if shared:
            con.close()
        else:
            self._con = con

    def _open(self, wait: bool) -> duckdb.DuckDBPyConnection:
        """Open the file; while another process holds it, retry (``wait``) or fail."""
        deadline = time.monotonic() + self._lock_timeout_s
        pause = 0.005
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=self._read_only)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise StoreError(f"cannot open the store {str(self.path)!r}: {exc}") from exc
                if not wait or time.monotonic() >= deadline:
                    raise StoreLockedError(
                        f"the store {str(self.path)!r} is in use by another process; stop it "
                        "or use another --store"
                    ) from exc
                time.sleep(pause)
                pause = min(pause * 2, 0.2)
        if not self._read_only:
            # Checkpoints rewrite the file; fewer, larger ones keep commit latency flat.
            con.execute("SET checkpoint_threshold = '256MB'")
        return con

    @contextlib.contextmanager
    def _session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection for one operation (a shared store opens and closes it around)."""
        if self._con is not None:
            yield self._con
            return
        con = self._open(wait=True)
        try:
            yield con
        finally:
            con.close()

    @classmethod
    def in_dir(cls, directory: Path, **kwargs: int | bool) -> DuckDBStore:
        """The store file inside a ``--store`` folder."""
        return cls(directory / DEFAULT_FILE, **kwargs)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ state

    def load_state(self) -> EngineState:
        with self._session() as con:
            state = _partition_state(con, None)
            # fetchall, not fetchone: DuckDB keeps a half-read result open on the connection.
            batch = con.execute("SELECT coalesce(max(batch_id), 0) FROM meta_batches").fetchall()
            csv_rows = con.execute(
                "SELECT path, until_before, until, size_before, size_after FROM meta_csv"
            ).fetchall()
        return EngineState(
            batch_id=int(batch[0][0]),
            partitions=state.partitions,
            seen=state.seen,
            csv={row[0]: CsvMark(*row) for row in csv_rows},
        )

    def load_partitions(self, partitions: Sequence[str]) -> EngineState:
        with self._session() as con:
            return _partition_state(con, list(partitions))

    # ------------------------------------------------------------------ commit

    def commit(self, commit: Commit) -> int:
        with self._session() as con:
            try:
                con.execute("BEGIN TRANSACTION")
                _check_fence(con, commit.expected)
                batch_id = int(
                    con.execute(
                        "SELECT coalesce(max(batch_id), 0) + 1 FROM meta_batches"
                    ).fetchall()[0][0]
                )
                self._apply(con, batch_id, commit)
                if self._compact_every and batch_id % self._compact_every == 0:
                    _compact(con)
                con.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                if isinstance(exc, duckdb.Error):
                    raise StoreError(f"commit of a batch failed: {exc}") from exc
                raise
        return batch_id

    @staticmethod
    def _apply(con: duckdb.DuckDBPyConnection, batch_id: int, commit: Commit) -> None:
        """Write one batch (the caller holds the transaction)."""
        for metric in METRICS:
            partial = commit.partials.get(metric.name)
            if partial is not None and partial.num_rows:
                con.register("_partial", partial)
                con.execute(f"INSERT INTO {_table(metric)} SELECT * FROM _partial")
                con.unregister("_partial")
        if commit.listens is not None and commit.listens.num_rows:
            con.register("_listens", commit.listens.select(list(_LISTEN_COLUMNS)))
            con.execute(
                f"INSERT INTO listens SELECT ?, {', '.join(_LISTEN_COLUMNS)} FROM _listens",
                [batch_id],
            )
            con.unregister("_listens")
        if commit.dead_letters.num_rows:
            con.register("_dead", commit.dead_letters)
            con.execute(
                'INSERT INTO dead_letters SELECT ?, topic, partition, "offset", reason, '
                "raw, ? FROM _dead",
                [batch_id, datetime.now(UTC)],
            )
            con.unregister("_dead")
        if commit.partitions:  # one statement: executemany runs one query per row
            states = commit.partitions.values()
            con.register(
                "_partitions",
                pa.table(
                    [
                        pa.array(list(commit.partitions), pa.string()),
                        pa.array([st.topic for st in states], pa.string()),
                        pa.array([st.position for st in states], pa.int64()),
                        pa.array([st.max_ts for st in states], pa.int64()),
                    ],
                    names=["partition", "topic", "position", "max_ts"],
                ),
            )
            con.execute("INSERT OR REPLACE INTO meta_partitions SELECT * FROM _partitions")
            con.unregister("_partitions")
        if commit.seen_pruned:  # of this process's partitions (and legacy ones without one)
            topics, cuts = zip(*commit.seen_pruned.items(), strict=True)
            con.execute(
                "DELETE FROM meta_seen WHERE (partition IS NULL OR list_contains(?, partition)) "
                "AND ts < map_extract_value(MAP(?, ?), topic)",
                [list(commit.partitions), list(topics), list(cuts)],
            )
        if commit.seen.num_rows:
            con.register("_seen", commit.seen)
            con.execute(
                "INSERT INTO meta_seen (topic, event_id, session_id, item, ts, partition) "
                "SELECT topic, event_id, session_id, item, ts, partition FROM _seen"
            )
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
            [batch_id, datetime.now(UTC), s.events_in, s.accepted, s.duplicates, s.late,
             s.dead, s.seconds],
        )  # fmt: skip

    def reset(self) -> None:
        """Delete every result, dead letter and position (one transaction)."""
        tables = [_table(m) for m in METRICS] + [
            "meta_partitions", "meta_seen", "meta_csv", "meta_batches", "dead_letters", "listens"
        ]  # fmt: skip
        with self._session() as con:
            con.execute("BEGIN TRANSACTION")
            for table in tables:
                con.execute(f"DELETE FROM {table}")
            con.execute("COMMIT")

    # ------------------------------------------------------------------ read

    def metric(self, name: str, where: str = "", params: tuple[object, ...] = ()) -> pa.Table:
        metric = BY_NAME.get(name)
        if metric is None:
            raise StoreError(f"no metric {name!r}; known: {', '.join(m.name for m in METRICS)}")
        keys = ", ".join(metric.key_names)
        sql = f"SELECT * FROM {merged_view(metric)} {where} ORDER BY {keys}"
        return self.sql(sql, params)

    def sql(self, query: str, params: tuple[object, ...] = ()) -> pa.Table:
        """Run a read query against the store (bound parameters only)."""
        with self._session() as con:
            return con.sql(query, params=list(params)).to_arrow_table()

    def cursor(self) -> duckdb.DuckDBPyConnection | None:
        """A connection of its own for one reader thread of this process (DuckDB connections
        are not shared between threads); None for a shared store, which readers open per
        operation instead."""
        return None if self._con is None else self._con.cursor()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def _partition_state(con: duckdb.DuckDBPyConnection, names: list[str] | None) -> EngineState:
    """Positions and de-dup keys of ``names`` (None: of every partition)."""
    where, params = ("", []) if names is None else ("WHERE list_contains(?, partition)", [names])
    rows = con.execute(
        f"SELECT partition, topic, position, max_ts FROM meta_partitions {where}", params
    ).fetchall()
    seen = con.sql(
        f"SELECT topic, event_id, session_id, item, ts, partition FROM meta_seen {where}",
        params=params,
    ).to_arrow_table()
    return EngineState(
        partitions={p: PartitionState(t, pos, mts) for p, t, pos, mts in rows},
        seen=seen.cast(SEEN_SCHEMA),
    )


def _check_fence(con: duckdb.DuckDBPyConnection, expected: dict[str, int | None]) -> None:
    """Refuse the commit if a partition is no longer where the committing process saw it."""
    if not expected:
        return
    stored = dict(
        con.execute(
            "SELECT partition, position FROM meta_partitions WHERE list_contains(?, partition)",
            [list(expected)],
        ).fetchall()
    )
    moved = sorted(p for p, pos in expected.items() if stored.get(p) != pos)
    if moved:
        shown = ", ".join(
            f"{p} (expected {expected[p]}, stored {stored.get(p)})" for p in moved[:5]
        )
        raise FencedError(
            f"another process committed {len(moved)} of this batch's partitions: {shown}",
            moved,
        )


def _compact(con: duckdb.DuckDBPyConnection) -> None:
    """Fold each metric's partial rows into one row per key (caller holds a transaction)."""
    for metric in METRICS:
        table = _table(metric)
        con.execute(f"CREATE TEMP TABLE _compact AS {merged_sql(metric, table)}")
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} SELECT * FROM _compact")
        con.execute("DROP TABLE _compact")
