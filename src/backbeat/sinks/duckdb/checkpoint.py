"""The embedded store's checkpoint tables: positions, de-dup keys, sink marks, and the fence.

Each function runs inside a transaction the caller holds (``store.py``), so a batch's
results and its checkpoint move together.

Next: ``store.py`` (the commit that calls these), ``../base.py`` (the contract).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import duckdb

from backbeat.sinks.base import SEEN_SCHEMA, CheckpointState, Mark, PartitionState, refuse_moved


def save_marks(
    con: duckdb.DuckDBPyConnection, marks: Mapping[str, Mark], batch_id: int | None
) -> None:
    for key, mark in marks.items():
        con.execute(
            "INSERT INTO meta_sinks VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
            "mark = excluded.mark, batch_id = coalesce(excluded.batch_id, meta_sinks.batch_id)",
            [key, json.dumps(mark), batch_id],
        )


def partition_state(con: duckdb.DuckDBPyConnection, names: list[str] | None) -> CheckpointState:
    """Positions and de-dup keys of ``names`` (None: of every partition)."""
    where, params = ("", []) if names is None else ("WHERE list_contains(?, partition)", [names])
    rows = con.execute(
        f"SELECT partition, topic, position, max_ts FROM meta_partitions {where}", params
    ).fetchall()
    seen = con.sql(
        f"SELECT topic, event_id, session_id, item, ts, partition FROM meta_seen {where}",
        params=params,
    ).to_arrow_table()
    return CheckpointState(
        partitions={p: PartitionState(t, pos, mts) for p, t, pos, mts in rows},
        seen=seen.cast(SEEN_SCHEMA),
    )


def check_fence(con: duckdb.DuckDBPyConnection, expected: dict[str, int | None]) -> None:
    """Refuse the commit if a partition is no longer where the committing process saw it."""
    if not expected:
        return
    stored = dict(
        con.execute(
            "SELECT partition, position FROM meta_partitions WHERE list_contains(?, partition)",
            [list(expected)],
        ).fetchall()
    )
    refuse_moved(expected, stored)
