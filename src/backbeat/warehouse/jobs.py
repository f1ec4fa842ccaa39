"""What the batch jobs did: table ``backbeat.jobs`` (step, target, hour, fingerprint, rows,
at), appended after the work it describes commits.

A job commits its data first and its record second; killed in between, the record is missing
and ``batch run`` does the (idempotent) work again: an hour replaced with the same rows. The
record says *which input* a step saw (the lake files' fingerprint), so a second delivery
written into the lake days later changes the fingerprint and the hour is loaded and
de-duplicated again.

Next: ``run.py`` (the catch-up that reads these records).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import pyarrow as pa

from backbeat.warehouse.catalog import Warehouse

TABLE: Final = "jobs"
SCHEMA: Final = pa.schema(
    [
        pa.field("step", pa.string(), nullable=False),
        pa.field("target", pa.string(), nullable=False),
        pa.field("hour", pa.int64(), nullable=False),
        pa.field("fingerprint", pa.string(), nullable=False),
        pa.field("rows", pa.int64(), nullable=False),
        pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


@dataclass(frozen=True)
class Done:
    """One step done on one hour of one target (a topic or a table)."""

    step: str
    target: str
    hour: int
    fingerprint: str
    rows: int


def record(warehouse: Warehouse, done: Sequence[Done]) -> None:
    """Append ``done`` (one commit for all).

    Raises:
        StoreError: the catalog refused.
    """
    if not done:
        return
    now = datetime.now(UTC)
    rows = pa.Table.from_pylist([{**d.__dict__, "at": now} for d in done], schema=SCHEMA)
    warehouse.table(TABLE, SCHEMA).append(rows)


def latest(warehouse: Warehouse, step: str) -> dict[tuple[str, int], str]:
    """The fingerprint each (target, hour) had when ``step`` last ran on it."""
    if not warehouse.exists(TABLE):
        return {}
    table = warehouse.refresh(TABLE)
    rows = table.scan(row_filter=f"step = '{step}'").to_arrow().sort_by("at").to_pylist()
    return {(r["target"], r["hour"]): r["fingerprint"] for r in rows}
