"""``backbeat query warehouse ...``: the replaced system's SQL over the gold listens, at any
snapshot (time travel).

Each query is plain SQL over a table named ``listens`` (the gold table's columns), the same
text ``docs/warehouse.md`` shows for Spark SQL, Trino or DuckDB: here the rows come from a
pyiceberg scan of the snapshot asked for (``--as-of`` a snapshot id or an ISO time: the
snapshot current then), filtered on ``ts`` by Iceberg (whole hours of files skipped), and the
SQL runs on DuckDB over them.

Next: ``model.py`` (the star schema).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Final

import duckdb
import pyarrow as pa

from backbeat.errors import ConfigError
from backbeat.warehouse import hours
from backbeat.warehouse.catalog import GOLD, Warehouse

if TYPE_CHECKING:
    from pyiceberg.table import Table


class WarehouseQuery(StrEnum):
    TOP_SONGS = "top-songs"
    TOP_ARTISTS = "top-artists"
    ACTIVE_USERS = "active-users"
    DEMOGRAPHICS = "demographics"
    LOCATIONS = "locations"


SQL: Final[dict[WarehouseQuery, str]] = {
    WarehouseQuery.TOP_SONGS: """
        SELECT artist, song, count(*) AS plays
        FROM listens
        GROUP BY artist, song
        ORDER BY plays DESC, artist, song
        LIMIT $limit""",
    WarehouseQuery.TOP_ARTISTS: """
        SELECT artist, count(*) AS plays, count(DISTINCT userId) AS listeners
        FROM listens
        GROUP BY artist
        ORDER BY plays DESC, artist
        LIMIT $limit""",
    WarehouseQuery.ACTIVE_USERS: """
        SELECT date_trunc('hour', ts) AS hour, count(DISTINCT userId) AS active_users,
               count(*) AS plays
        FROM listens
        GROUP BY 1
        ORDER BY 1
        LIMIT $limit""",
    WarehouseQuery.DEMOGRAPHICS: """
        SELECT gender, level, count(*) AS plays, count(DISTINCT userId) AS listeners
        FROM listens
        GROUP BY gender, level
        ORDER BY plays DESC, gender, level
        LIMIT $limit""",
    WarehouseQuery.LOCATIONS: """
        SELECT state, city, count(*) AS plays, count(DISTINCT userId) AS listeners
        FROM listens
        GROUP BY state, city
        ORDER BY plays DESC, state, city
        LIMIT $limit""",
}
COLUMNS: Final = ("ts", "userId", "artist", "song", "gender", "level", "state", "city")


def snapshot_id(table: Table, as_of: str | None) -> int | None:
    """The ``table``'s snapshot for ``as_of`` (an id, or an ISO time: the snapshot current
    then); None: the current one.

    Raises:
        ConfigError: no such snapshot, or the table did not exist yet then.
    """
    if as_of is None:
        return None
    if as_of.isdigit():
        if table.snapshot_by_id(int(as_of)) is None:
            known = ", ".join(str(s.snapshot_id) for s in table.snapshots()[-3:])
            raise ConfigError(f"--as-of {as_of}: no such snapshot (latest: {known})")
        return int(as_of)
    try:
        when = datetime.fromisoformat(as_of)
    except ValueError:
        raise ConfigError(f"--as-of {as_of!r}: a snapshot id or an ISO time") from None
    if when.tzinfo is None:
        raise ConfigError(f"--as-of {as_of!r}: give a time zone (e.g. Z or +00:00)")
    found = table.snapshot_as_of_timestamp(int(when.timestamp() * 1000))
    if found is None:
        raise ConfigError(f"--as-of {as_of}: the table had no snapshot yet then")
    return int(found.snapshot_id)


def ask(
    warehouse: Warehouse,
    query: WarehouseQuery,
    start_ms: int | None = None,
    end_ms: int | None = None,
    as_of: str | None = None,
    limit: int = 10,
) -> pa.Table:
    """``query`` over the gold listens in ``[start, end)`` as of a snapshot.

    Raises:
        ConfigError: a bad ``as_of``.
        StoreError: the warehouse has no gold table yet.
    """
    table = warehouse.refresh(GOLD)
    snapshot = snapshot_id(table, as_of)
    scan = table.scan(row_filter=hours.between(start_ms, end_ms), selected_fields=COLUMNS,
                      snapshot_id=snapshot)  # fmt: skip
    listens = scan.to_arrow()
    utc = listens.column("ts").cast(pa.timestamp("us"))  # wall time in UTC, whatever the zone
    listens = listens.set_column(listens.schema.get_field_index("ts"), "ts", utc)
    con = duckdb.connect()
    try:
        con.register("listens", listens)
        return con.sql(SQL[query].replace("$limit", "?"), params=[limit]).to_arrow_table()
    finally:
        con.close()
