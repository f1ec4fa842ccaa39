"""The embedded store: one DuckDB file holding results, dead letters and the checkpoint.

Partial aggregates are *appended* per batch (a plain insert, no per-key upsert) and merged
on read; every ``compact_every`` batches the partial rows of each metric are folded into one
row per key, inside the same transaction as the batch. The batch's fresh listens are kept for
filtered rankings and the live event table. Positions, watermarks, de-dup keys, sink marks
and batch statistics live in ``meta_*`` tables next to the results (``schema.py``), so one
``COMMIT`` moves all of them together.

A store is opened *exclusive* (one process keeps the file open: the fast path) or *shared*
(every operation opens the file, does its work and closes it, waiting while another process
holds it), so several engine processes of one Kafka consumer group, and readers, can use
one store. Each commit checks, inside its transaction, that its partitions are still where
the process last saw them (fencing, see ``../base.py``).

Next: ``../sql/answers.py`` (the queries), ``schema.py`` (the tables), ``../base.py`` (the contract).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa

from backbeat.analytics.metrics import METRICS, merged_sql
from backbeat.errors import ConfigError, StoreError, StoreLockedError
from backbeat.events.schema import Topic
from backbeat.sinks.base import (
    CheckpointState,
    Commit,
    Mark,
    Store,
)
from backbeat.sinks.duckdb import schema
from backbeat.sinks.duckdb.checkpoint import check_fence, partition_state, save_marks
from backbeat.sinks.duckdb.connections import Cursors, Files
from backbeat.sinks.queries import Reader
from backbeat.sinks.sql.pieces import (
    CHECKPOINT_TABLES,
    LISTEN_COLUMNS,
    RESULT_TABLES,
    metric_table,
)
from backbeat.sinks.sql.reader import SqlReader

log = logging.getLogger(__name__)

DEFAULT_FILE: Final = "backbeat.duckdb"
SCHEME: Final = "duckdb://"


def store_file(location: str | Path) -> Path:
    """The store file of a ``--store`` location: a folder, or ``duckdb://FOLDER``."""
    text = str(location)
    folder = Path(text.removeprefix(SCHEME)) if text.startswith(SCHEME) else Path(text)
    if folder.suffix == ".duckdb" or folder.is_file():
        raise ConfigError(
            f"--store {text!r}: give the folder that holds (or will hold) {DEFAULT_FILE}, not a file"
        )
    return folder / DEFAULT_FILE


class DuckDBStore(Store):
    """Results and the checkpoint in one DuckDB file."""

    name = "duckdb"

    def __init__(
        self,
        path: Path,
        *,
        shared: bool = False,
        compact_every: int = 50,
        lock_timeout_s: float = 60.0,
    ) -> None:
        """``shared`` opens the file per operation (several processes); else it stays open.

        Raises:
            StoreLockedError: another process holds the file (exclusive mode).
            StoreError: the file cannot be opened, or was written by a newer backbeat.
        """
        self.path = path
        self._compact_every = compact_every
        self._lock_timeout_s = lock_timeout_s
        self._con: duckdb.DuckDBPyConnection | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        con = self._open(wait=shared)
        try:
            schema.prepare(con, path)
        except BaseException:
            con.close()
            raise
        if shared:
            con.close()
        else:
            self._con = con

    @classmethod
    def at(cls, location: str, *, shared: bool = False) -> DuckDBStore:
        """The store in a ``--store`` folder (created when missing)."""
        return cls(store_file(location), shared=shared)

    @classmethod
    def reader_at(cls, location: str, wait_s: float = 5.0) -> Reader:
        """Named queries over a store another process writes (opened read-only per query).

        Raises:
            StoreError: there is no store there.
        """
        path = store_file(location)
        if not path.exists():
            raise StoreError(
                f"no store in {str(path.parent)!r}: run `backbeat stream` or `backbeat demo` "
                "with --store pointing there first"
            )
        return SqlReader(Files(path, wait_s))

    def reader(self) -> Reader:
        if self._con is not None:
            return SqlReader(Cursors(self._con))
        return SqlReader(Files(self.path, self._lock_timeout_s))

    def _open(self, wait: bool) -> duckdb.DuckDBPyConnection:
        """Open the file; while another process holds it, retry (``wait``) or fail."""
        deadline = time.monotonic() + self._lock_timeout_s
        pause = 0.005
        while True:
            try:
                con = duckdb.connect(str(self.path))
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
            except duckdb.Error as exc:
                raise StoreError(f"cannot open the store {str(self.path)!r}: {exc}") from exc
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

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._session() as con:
            try:
                con.execute("BEGIN TRANSACTION")
                yield con
                con.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                if isinstance(exc, duckdb.Error):
                    raise StoreError(f"writing the store failed: {exc}") from exc
                raise

    # ------------------------------------------------------------------ checkpoint

    def load_state(self) -> CheckpointState:
        with self._session() as con:
            state = partition_state(con, None)
            # fetchall, not fetchone: DuckDB keeps a half-read result open on the connection.
            batch = con.execute("SELECT coalesce(max(batch_id), 0) FROM meta_batches").fetchall()
            marks = con.execute("SELECT key, mark FROM meta_sinks").fetchall()
        return CheckpointState(
            batch_id=int(batch[0][0]),
            partitions=state.partitions,
            seen=state.seen,
            marks={key: json.loads(mark) for key, mark in marks},
        )

    def load_partitions(self, partitions: Sequence[str]) -> CheckpointState:
        with self._session() as con:
            return partition_state(con, list(partitions))

    def save_marks(self, marks: Mapping[str, Mark]) -> None:
        if marks:
            with self._transaction() as con:
                save_marks(con, marks, None)

    # ------------------------------------------------------------------ commit

    def commit(self, commit: Commit) -> int:
        with self._transaction() as con:
            check_fence(con, commit.expected)
            batch_id = int(
                con.execute("SELECT coalesce(max(batch_id), 0) + 1 FROM meta_batches").fetchall()[
                    0
                ][0]
            )
            _apply(con, batch_id, commit)
            if self._compact_every and batch_id % self._compact_every == 0:
                _compact(con)
        return batch_id

    def reset(self) -> None:
        tables = [metric_table(m) for m in METRICS]
        tables += [*RESULT_TABLES, *CHECKPOINT_TABLES]
        with self._transaction() as con:
            for table in tables:
                con.execute(f"DELETE FROM {table}")

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def _insert(
    con: duckdb.DuckDBPyConnection, sql: str, table: pa.Table, params: list[object]
) -> None:
    """``sql`` reading the Arrow ``table`` as ``_rows``."""
    con.register("_rows", table)
    try:
        con.execute(sql, params)
    finally:
        con.unregister("_rows")


def _apply(con: duckdb.DuckDBPyConnection, batch_id: int, commit: Commit) -> None:
    """Write one batch (the caller holds the transaction)."""
    batch = commit.batch
    for metric in METRICS:
        partial = batch.partials.get(metric.name)
        if partial is not None and partial.num_rows:
            _insert(con, f"INSERT INTO {metric_table(metric)} SELECT * FROM _rows", partial, [])
    listens = batch.events.get(Topic.LISTEN)
    if listens is not None and listens.num_rows:
        cols = ", ".join(LISTEN_COLUMNS)
        _insert(
            con,
            f"INSERT INTO listens SELECT ?, {cols} FROM _rows",
            listens.select(list(LISTEN_COLUMNS)),
            [batch_id],
        )
    if batch.dead_letters.num_rows:
        _insert(
            con,
            'INSERT INTO dead_letters SELECT ?, topic, partition, "offset", reason, raw, ? '
            "FROM _rows",
            batch.dead_letters,
            [batch_id, datetime.now(UTC)],
        )
    if commit.partitions:  # one statement: executemany runs one query per row
        states = commit.partitions.values()
        rows = pa.table(
            [
                pa.array(list(commit.partitions), pa.string()),
                pa.array([st.topic for st in states], pa.string()),
                pa.array([st.position for st in states], pa.int64()),
                pa.array([st.max_ts for st in states], pa.int64()),
            ],
            names=["partition", "topic", "position", "max_ts"],
        )
        _insert(con, "INSERT OR REPLACE INTO meta_partitions SELECT * FROM _rows", rows, [])
    if commit.seen_pruned:  # of this process's partitions (and legacy ones without one)
        topics, cuts = zip(*commit.seen_pruned.items(), strict=True)
        con.execute(
            "DELETE FROM meta_seen WHERE (partition IS NULL OR list_contains(?, partition)) "
            "AND ts < map_extract_value(MAP(?, ?), topic)",
            [list(commit.partitions), list(topics), list(cuts)],
        )
    if commit.seen.num_rows:
        _insert(
            con,
            "INSERT INTO meta_seen (topic, event_id, session_id, item, ts, partition) "
            "SELECT topic, event_id, session_id, item, ts, partition FROM _rows",
            commit.seen,
            [],
        )
    save_marks(con, commit.marks, batch_id)
    s = commit.stats
    con.execute(
        "INSERT INTO meta_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [batch_id, datetime.now(UTC), s.events_in, s.accepted, s.duplicates, s.late,
         s.dead, s.seconds],
    )  # fmt: skip


def _compact(con: duckdb.DuckDBPyConnection) -> None:
    """Fold each metric's partial rows into one row per key (caller holds a transaction)."""
    for metric in METRICS:
        table = metric_table(metric)
        con.execute(f"CREATE TEMP TABLE _compact AS {merged_sql(metric, table)}")
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} SELECT * FROM _compact")
        con.execute("DROP TABLE _compact")
