"""``backbeat batch dedup``: the gold ``listens`` table, one row per listen, by hour.

A listen delivered twice is the same event: same ``ts``, so the same hour. The engine drops
repeats within its de-dup horizon; what reaches the lake later (a second delivery days
after, a replay by another writer) is dropped here: within each hour, one row per ``eventId``
and then one per ``(sessionId, itemInSession)`` (the key the replaced system de-duplicated
by), keeping the earliest. Each hour is replaced as a whole, so running it again changes
nothing.

Next: ``maintain.py``.
"""

from __future__ import annotations

from typing import Final

import duckdb
import pyarrow as pa

from backbeat.events.schema import Topic
from backbeat.warehouse import hours
from backbeat.warehouse.catalog import GOLD, Warehouse
from backbeat.warehouse.jobs import Done

_DISTINCT: Final = """
WITH by_event AS (
    SELECT * FROM staged
    QUALIFY row_number() OVER (PARTITION BY eventId ORDER BY ts, sessionId, itemInSession) = 1
)
SELECT * FROM by_event
QUALIFY row_number() OVER (PARTITION BY sessionId, itemInSession ORDER BY ts, eventId) = 1
ORDER BY ts, sessionId, itemInSession
"""


def distinct_listens(staged: pa.Table) -> pa.Table:
    """``staged`` without repeats (by ``eventId``, then by ``(sessionId, itemInSession)``)."""
    con = duckdb.connect()
    try:
        con.register("staged", staged)
        return con.sql(_DISTINCT).to_arrow_table().cast(staged.schema)
    finally:
        con.close()


def dedup_hour(warehouse: Warehouse, hour: int, fingerprint: str) -> Done:
    """Replace ``hour`` of the gold table with the staging listens of that hour, de-duplicated.
    ``fingerprint``: the lake input the staging hour was loaded from (recorded).

    Raises:
        StoreError: the catalog failed (nothing is committed then).
    """
    staging = warehouse.staging(Topic.LISTEN)
    staged = staging.scan(row_filter=hours.within(hour)).to_arrow()
    gold = warehouse.gold()
    rows = distinct_listens(staged.cast(gold.schema().as_arrow()) if staged.num_rows else staged)
    warehouse.commit(
        gold,
        lambda: gold.overwrite(
            rows,
            overwrite_filter=hours.within(hour),
            snapshot_properties={"backbeat.job": "dedup", "backbeat.hour": hours.label(hour)},
        ),
    )
    return Done("dedup", GOLD, hour, fingerprint, rows.num_rows)
