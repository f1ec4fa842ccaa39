"""``backbeat batch model``: the star schema (Streamify's dbt models) from the staging tables
and the gold listens, built with DuckDB over Arrow tables scanned with pyiceberg.

Tables, in namespace ``backbeat``: ``dim_users`` (a type-2 slowly changing dimension of each
user's level: one row per level period, with ``row_activation_date``,
``row_expiration_date`` and ``current_row``), ``dim_songs``, ``dim_artists``,
``dim_location``, ``dim_datetime`` (one row per hour from the first listen's to the last's),
``fact_streams`` (one row per distinct listen, keyed to each dimension, the user by the row
valid at the listen's ts) and ``wide_stream`` (the fact joined to every dimension). The fact
and the wide table are partitioned by ``hour(ts)``, the dimensions not at all.

Materialization: every run rebuilds every table from its inputs and replaces it whole with
one ``overwrite`` snapshot (dbt's ``table``): a reader sees the previous build or the new
one; the keys are hashes of natural keys, so a rebuild of the same data gives the same keys.
The inputs are read into memory, fine for the lake of one service (tens of millions of
listens); an incremental fact by hour is the next step.

Next: ``model_sql.py`` (the queries and the tables' columns), ``reader.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import duckdb
import numpy as np
import pyarrow as pa

from backbeat.errors import StoreError
from backbeat.events.schema import Topic
from backbeat.warehouse.catalog import GOLD, NAMESPACE, Warehouse, table_schema
from backbeat.warehouse.model_sql import QUERIES, SCHEMAS

log = logging.getLogger(__name__)

TABLES: Final = tuple(QUERIES)
"""The model's tables, in build order."""

_COLUMNS: Final = ("ts", "sessionId", "itemInSession", "userId", "level", "firstName",
                   "lastName", "gender", "registration", "city", "state", "zip", "lat", "lon",
                   "country")  # fmt: skip

Progress = Callable[[str, int], None]
"""Called with a table's name and row count once the table is committed."""


@dataclass(frozen=True)
class ModelReport:
    """What a build wrote: rows per table (in build order) and the seconds it took."""

    rows: dict[str, int]
    seconds: float


def build_model(warehouse: Warehouse, progress: Progress | None = None) -> ModelReport:
    """Rebuild every table of the star schema from the staging tables and the gold listens.

    Each table is committed as soon as it is built (dimensions first, then the fact, then the
    wide table), so a failure part way leaves the earlier tables new and the later ones as the
    previous build left them; running it again completes the build.

    Raises:
        StoreError: no gold table yet (``backbeat batch run`` first), or the catalog or the
            files failed.
    """
    started = time.monotonic()
    if not warehouse.exists(GOLD):
        raise StoreError(
            f"the warehouse has no {NAMESPACE}.{GOLD} table yet: load and de-duplicate the lake "
            "first (backbeat batch run)"
        )
    listens = _naive(warehouse.gold().scan().to_arrow())
    events = _events(warehouse)
    con = duckdb.connect()
    rows: dict[str, int] = {}
    try:
        con.register("listens", listens)
        con.register("events", events)
        for name in TABLES:
            built = con.sql(QUERIES[name]).to_arrow_table()
            con.register(name, built)
            _replace(warehouse, name, _with_zone(built).cast(SCHEMAS[name]))
            rows[name] = built.num_rows
            log.info("model: %s, %d rows", name, built.num_rows)
            if progress is not None:
                progress(name, built.num_rows)
    finally:
        con.close()
    return ModelReport(rows, time.monotonic() - started)


def _events(warehouse: Warehouse) -> pa.Table:
    """The columns of every topic's staging rows the dimensions need (``country``: listens
    only, null elsewhere), and ``late``: true on a status change. A topic with no table yet
    adds nothing."""
    contract = table_schema(Topic.LISTEN)
    schema = pa.schema([*(contract.field(c).with_nullable(True) for c in _COLUMNS),
                        ("late", pa.bool_())])  # fmt: skip
    parts = [schema.empty_table()]
    for topic in Topic:
        if not warehouse.exists(topic.value):
            continue
        table = warehouse.staging(topic)
        wanted = [c for c in _COLUMNS if c in table.schema().column_names]
        part = table.scan(selected_fields=tuple(wanted)).to_arrow()
        for name in _COLUMNS:
            if name not in part.column_names:
                part = part.append_column(name, pa.nulls(part.num_rows, contract.field(name).type))
        late = pa.array(np.full(part.num_rows, topic is Topic.STATUS_CHANGE))
        parts.append(part.select(list(_COLUMNS)).append_column("late", late).cast(schema))
    return _naive(pa.concat_tables(parts))


def _replace(warehouse: Warehouse, name: str, rows: pa.Table) -> None:
    table = warehouse.table(name, SCHEMAS[name])
    warehouse.commit(
        table, lambda: table.overwrite(rows, snapshot_properties={"backbeat.job": "model"})
    )


def _naive(table: pa.Table) -> pa.Table:
    """UTC timestamps as naive ones (DuckDB then computes in UTC whatever its zone)."""
    return _retyped(table, lambda t: pa.timestamp(t.unit))


def _with_zone(table: pa.Table) -> pa.Table:
    """Naive timestamps (UTC) back as UTC ones."""
    return _retyped(table, lambda t: pa.timestamp("us", tz="UTC"))


def _retyped(table: pa.Table, to: Callable[[pa.TimestampType], pa.DataType]) -> pa.Table:
    fields = [f.with_type(to(f.type)) if pa.types.is_timestamp(f.type) else f for f in table.schema]
    return table.cast(pa.schema(fields))
