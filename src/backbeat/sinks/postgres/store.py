"""The PostgreSQL store: results, dead letters and the checkpoint in one database, written by
any number of processes (members of one consumer group, on any machines) and served from.

Each batch is ONE transaction: the partial aggregates, the fresh listens and the de-dup keys
appended by bulk ``COPY``, dead letters, positions, sink marks and the batch's statistics; then ``pg_notify`` tells readers (``serve``)
that a batch landed, delivered when the transaction commits. Commits are fenced like the
embedded store's (``../base.py``): inside the transaction, each partition must still be where
the committing process last saw it. A transaction-level advisory lock orders commits, so batch
ids are given in commit order and a reader that has seen batch ``n`` has seen every batch
before it; everything else (decoding, aggregating) runs in parallel in the members.

Partial rows are appended (no per-key upsert: an index lookup per row cost three times the
COPY) and merged on read, like the embedded store's; every ``compact_every`` batches the
commit folds the rows of the windows written since the last compaction into one row per key.

Next: ``schema.py`` (tables, migrations), ``arrow.py`` (COPY), ``reader.py`` (queries).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from backbeat.analytics.metrics import METRICS
from backbeat.events.schema import Topic
from backbeat.sinks.base import (
    SEEN_SCHEMA,
    CheckpointState,
    Commit,
    Mark,
    PartitionState,
    Store,
    refuse_moved,
)
from backbeat.sinks.postgres import schema
from backbeat.sinks.postgres.arrow import copy_in, to_arrow
from backbeat.sinks.postgres.connect import failed, redacted
from backbeat.sinks.postgres.reader import CHANNEL, PostgresConnections
from backbeat.sinks.queries import Reader
from backbeat.sinks.sql.pieces import (
    CHECKPOINT_TABLES,
    LISTEN_COLUMNS,
    LISTENS_TABLE,
    RESULT_TABLES,
    metric_table,
)
from backbeat.sinks.sql.reader import SqlReader

log = logging.getLogger(__name__)

COMMIT_LOCK: Final = 0x6261636B62656174 + 1
"""The advisory lock every commit holds until it ends: batch ids in commit order."""
_DEAD_COLUMNS: Final = ("batch_id", "topic", "partition", "offset", "reason", "raw", "received_at")
_SEEN_COLUMNS: Final = tuple(SEEN_SCHEMA.names)


class PostgresStore(Store):
    """Results and the checkpoint in one PostgreSQL database."""

    name = "postgresql"

    def __init__(self, location: str, *, compact_every: int = 50) -> None:
        """Connect, and create or migrate the schema.

        Raises:
            ConfigError: a malformed URL; StoreError: no server, refused, or a newer schema.
        """
        self.location = location
        self._compact_every = compact_every
        self._where = repr(redacted(location))
        self._con: psycopg.Connection[Any] | None = None
        self._connection()
        self._reader: PostgresConnections | None = None

    @classmethod
    def at(cls, location: str, *, shared: bool = False) -> PostgresStore:
        """The store in the database at ``location`` (every PostgreSQL store is shared)."""
        return cls(location)

    @classmethod
    def reader_at(cls, location: str) -> Reader:
        """Named queries over the store at ``location`` (a pool of connections)."""
        connections = PostgresConnections(location)
        try:
            connections.check()
        except BaseException:
            connections.close()
            raise
        return SqlReader(connections)

    def reader(self) -> Reader:
        if self._reader is None:
            self._reader = PostgresConnections(self.location)
        return SqlReader(self._reader)

    def _connection(self) -> psycopg.Connection[Any]:
        """The writer's connection (the schema migrated first); a new one after the last broke."""
        if self._con is not None and not self._con.closed and not self._con.broken:
            return self._con
        con, before = schema.migrated(self.location, self._where)
        if before < schema.VERSION:
            log.info("store %s: schema %d -> %d", self._where, before, schema.VERSION)
        self._con = con
        return con

    @contextmanager
    def _transaction(self, action: str) -> Iterator[psycopg.Cursor[Any]]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        con = self._connection()
        try:
            with con.transaction(), con.cursor() as cur:
                yield cur
        except psycopg.Error as exc:
            raise failed(action, self.location, exc) from None

    # ------------------------------------------------------------------ checkpoint

    def load_state(self) -> CheckpointState:
        with self._transaction("reading") as cur:
            state = _partition_state(cur, None)
            batch = cur.execute("SELECT coalesce(max(batch_id), 0) FROM meta_batches").fetchone()
            marks = cur.execute("SELECT key, mark FROM meta_sinks").fetchall()
        return CheckpointState(
            batch_id=int(batch[0]) if batch else 0,
            partitions=state.partitions,
            seen=state.seen,
            marks={key: json.loads(mark) for key, mark in marks},
        )

    def load_partitions(self, partitions: Sequence[str]) -> CheckpointState:
        with self._transaction("reading") as cur:
            return _partition_state(cur, list(partitions))

    def save_marks(self, marks: Mapping[str, Mark]) -> None:
        if marks:
            with self._transaction("writing") as cur:
                _save_marks(cur, marks, None)

    # ------------------------------------------------------------------ commit

    def commit(self, commit: Commit) -> int:
        with self._transaction("writing") as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (COMMIT_LOCK,))
            if commit.expected:
                rows = cur.execute(
                    "SELECT partition, position FROM meta_partitions WHERE partition = ANY(%s)",
                    (list(commit.expected),),
                ).fetchall()
                refuse_moved(commit.expected, dict(rows))
            found = cur.execute("SELECT coalesce(max(batch_id), 0) + 1 FROM meta_batches")
            batch_id = int(found.fetchone()[0])  # type: ignore[index]
            _apply(cur, batch_id, commit)
            _compact(cur, commit, self._compact_every)
            cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(batch_id)))
        return batch_id

    def reset(self) -> None:
        tables = [metric_table(m) for m in METRICS] + [*RESULT_TABLES, *CHECKPOINT_TABLES]
        tables.append("meta_compaction")
        with self._transaction("resetting") as cur:
            cur.execute(f"TRUNCATE {', '.join(tables)}")

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def _partition_state(cur: psycopg.Cursor[Any], names: list[str] | None) -> CheckpointState:
    """Positions and de-dup keys of ``names`` (None: of every partition)."""
    where, params = ("", ()) if names is None else ("WHERE partition = ANY(%s)", (names,))
    rows = cur.execute(
        f"SELECT partition, topic, position, max_ts FROM meta_partitions {where}", params
    ).fetchall()
    cur.execute(f"SELECT {', '.join(_SEEN_COLUMNS)} FROM meta_seen {where}", params)
    return CheckpointState(
        partitions={p: PartitionState(t, pos, mts) for p, t, pos, mts in rows},
        seen=to_arrow(cur).cast(SEEN_SCHEMA),
    )


def _save_marks(cur: psycopg.Cursor[Any], marks: Mapping[str, Mark], batch_id: int | None) -> None:
    for key, mark in marks.items():
        cur.execute(
            "INSERT INTO meta_sinks VALUES (%s, %s, %s) ON CONFLICT (key) DO UPDATE SET "
            "mark = excluded.mark, batch_id = coalesce(excluded.batch_id, meta_sinks.batch_id)",
            (key, json.dumps(mark), batch_id),
        )


def _constant(value: object, kind: pa.DataType, rows: int) -> pa.Array:
    return pa.array([value] * rows, kind)


def _apply(cur: psycopg.Cursor[Any], batch_id: int, commit: Commit) -> None:
    """Write one batch (the caller holds the transaction and the commit lock)."""
    batch = commit.batch
    for metric in METRICS:
        partial = batch.partials.get(metric.name)
        if partial is not None and partial.num_rows:
            copy_in(cur, metric_table(metric), partial.column_names, partial)
    listens = batch.events.get(Topic.LISTEN)
    if listens is not None and listens.num_rows:
        rows = listens.select(list(LISTEN_COLUMNS))
        rows = rows.add_column(0, "batch_id", _constant(batch_id, pa.int64(), rows.num_rows))
        copy_in(cur, "listens", LISTENS_TABLE, rows)
    dead = batch.dead_letters
    if dead.num_rows:
        dead = dead.add_column(0, "batch_id", _constant(batch_id, pa.int64(), dead.num_rows))
        now = _constant(datetime.now(UTC), pa.timestamp("us", tz="UTC"), dead.num_rows)
        copy_in(cur, "dead_letters", _DEAD_COLUMNS, dead.append_column("received_at", now))
    if commit.partitions:
        names = list(commit.partitions)
        states = list(commit.partitions.values())
        cur.execute(
            "INSERT INTO meta_partitions SELECT * FROM unnest(%s::text[], %s::text[], "
            "%s::bigint[], %s::bigint[]) ON CONFLICT (partition) DO UPDATE SET "
            "topic = excluded.topic, position = excluded.position, max_ts = excluded.max_ts",
            (names, [s.topic for s in states], [s.position for s in states],
             [s.max_ts for s in states]),
        )  # fmt: skip
    if commit.seen_pruned:  # of this process's partitions (and legacy ones without one)
        topics, cuts = zip(*commit.seen_pruned.items(), strict=True)
        cur.execute(
            "DELETE FROM meta_seen s USING unnest(%s::text[], %s::bigint[]) AS c(topic, cut) "
            "WHERE s.topic = c.topic AND s.ts < c.cut "
            "AND (s.partition IS NULL OR s.partition = ANY(%s))",
            (list(topics), list(cuts), list(commit.partitions)),
        )
    if commit.seen.num_rows:
        copy_in(cur, "meta_seen", _SEEN_COLUMNS, commit.seen.select(list(_SEEN_COLUMNS)))
    _save_marks(cur, commit.marks, batch_id)
    s = commit.stats
    cur.execute(
        "INSERT INTO meta_batches VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (batch_id, datetime.now(UTC), s.events_in, s.accepted, s.duplicates, s.late, s.dead,
         s.seconds),
    )  # fmt: skip


def _compact(cur: psycopg.Cursor[Any], commit: Commit, every: int) -> None:
    """Note the earliest window this batch appended to; every ``every`` batches, fold the
    partial rows of the windows from the earliest noted on (the caller holds the lock)."""
    starts = [
        pc.min(p["window_start"]).as_py() for p in commit.batch.partials.values() if p.num_rows
    ]
    if not starts or not every:
        return
    low, batches = cur.execute(
        "INSERT INTO meta_compaction VALUES (1, %s, 1) ON CONFLICT (id) DO UPDATE SET "
        "low = least(meta_compaction.low, excluded.low), "
        "batches = meta_compaction.batches + 1 RETURNING low, batches",
        (min(starts),),
    ).fetchone() or (None, 0)
    if batches >= every:
        for metric in METRICS:
            cur.execute(schema.compact_sql(metric), (low,))
        cur.execute("UPDATE meta_compaction SET low = NULL, batches = 0")
