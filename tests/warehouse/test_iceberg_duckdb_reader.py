"""An Iceberg table pyiceberg writes (hour-partitioned, appended twice, overwritten with a
filter) reads the same through DuckDB 1.5.5's ``iceberg_scan``, a reader we did not write: the
current snapshot and an older one by its metadata file, on a local path and on S3.

Next: ``tests/support/iceberg_duckdb.py`` (the reader).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.support.iceberg_duckdb import IcebergReader

pytest.importorskip("pyiceberg", reason="the iceberg extra (pyiceberg) is missing")

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import HourTransform
from pyiceberg.types import LongType, NestedField, StringType, TimestampType

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "ts", TimestampType(), required=False),
    NestedField(3, "song", StringType(), required=False),
    NestedField(4, "ms_played", LongType(), required=False),
)
SPEC = PartitionSpec(PartitionField(2, 1000, HourTransform(), "ts_hour"))
START = datetime(2026, 3, 1, 10, 0)  # noqa: DTZ001 -- an Iceberg ``timestamp`` has no zone
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
ROWS_SQL = f"SELECT id, strftime(ts, '{TS_FORMAT}') AS ts, song, ms_played FROM t"
SUMMARY_SQL = """
    SELECT count(*) AS n, sum(ms_played) AS ms, count(DISTINCT id) AS ids,
           count(DISTINCT date_trunc('hour', ts)) AS hours FROM t
"""


def _batch(ids: range, first: datetime, step_minutes: int) -> pa.Table:
    """One play per id, the first at ``first``, then one every ``step_minutes``."""
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "ts": pa.array([first + timedelta(minutes=step_minutes * k) for k in range(len(ids))],
                       pa.timestamp("us")),
        "song": pa.array([f"song-{i % 7}" for i in ids]),
        "ms_played": pa.array([1000 + 37 * i for i in ids], pa.int64()),
    })  # fmt: skip


def _written(catalog: SqlCatalog) -> tuple[Table, list[str]]:
    """The plays table after two appends and an overwrite of ``ts >= 12:30`` (which rewrites
    the 12:00 file and drops the later ones); the metadata file after each, oldest first."""
    catalog.create_namespace("lake")
    table = catalog.create_table("lake.plays", schema=SCHEMA, partition_spec=SPEC)
    locations = []
    table.append(_batch(range(120), START, 2))  # 10:00 .. 13:58
    locations.append(table.metadata_location)
    table.append(_batch(range(120, 180), START + timedelta(hours=4), 2))  # 14:00 .. 15:58
    locations.append(table.metadata_location)
    cut = START + timedelta(hours=2, minutes=30)
    table.overwrite(
        _batch(range(1000, 1030), cut, 3), overwrite_filter=f"ts >= '{cut.isoformat()}'"
    )
    locations.append(table.metadata_location)
    return table, locations


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    """pyiceberg's rows in the form the DuckDB query returns them, sorted by id."""
    rows = [{**row, "ts": row["ts"].strftime(TS_FORMAT)} for row in table.to_pylist()]
    return sorted(rows, key=lambda row: row["id"])


def _check_every_snapshot(reader: IcebergReader, table: Table, locations: list[str],
                          s3_endpoint: str | None = None) -> None:  # fmt: skip
    """Each snapshot's rows and sums through DuckDB equal pyiceberg's own scan of it."""
    for location, snapshot_id in zip(locations, _snapshot_of(table, locations), strict=True):
        expected = table.scan(snapshot_id=snapshot_id).to_arrow()
        got = reader.query(ROWS_SQL + " ORDER BY id", {"t": location}, s3_endpoint)
        assert got == _rows(expected), location
        [summary] = reader.query(SUMMARY_SQL, {"t": location}, s3_endpoint)
        assert summary == {
            "n": expected.num_rows,
            "ms": sum(expected["ms_played"].to_pylist()),
            "ids": len(set(expected["id"].to_pylist())),
            "hours": len({ts.replace(minute=0) for ts in expected["ts"].to_pylist()}),
        }


def _snapshot_of(table: Table, locations: list[str]) -> list[int]:
    """The current snapshot each metadata file names (pyiceberg reads it back)."""
    from pyiceberg.serializers import FromInputFile

    found = []
    for location in locations:
        metadata = FromInputFile.table_metadata(table.io.new_input(location))
        assert metadata.current_snapshot_id is not None
        found.append(metadata.current_snapshot_id)
    return found


@pytest.mark.integration
def test_duckdb_reads_what_pyiceberg_wrote(tmp_path: Path, duckdb_iceberg: IcebergReader) -> None:
    catalog = SqlCatalog("test", uri=f"sqlite:///{tmp_path}/catalog.db",
                         warehouse=f"file://{tmp_path}/wh")  # fmt: skip
    table, locations = _written(catalog)
    final = table.scan().to_arrow()
    assert final.num_rows == 75 + 30  # 10:00-12:28 kept, the overwrite's 30 from 12:30
    assert sorted(final["id"].to_pylist()) == [*range(75), *range(1000, 1030)]
    _check_every_snapshot(duckdb_iceberg, table, locations)
    [old] = duckdb_iceberg.query("SELECT max(id) AS top FROM t", {"t": locations[1]})
    assert old == {"top": 179}  # the second append, before the overwrite


@pytest.mark.integration
def test_duckdb_reads_an_s3_table(
    tmp_path: Path, s3_bucket: tuple[str, str], duckdb_iceberg: IcebergReader
) -> None:
    import os

    endpoint, bucket = s3_bucket
    catalog = SqlCatalog("test", **{
        "uri": f"sqlite:///{tmp_path}/catalog.db",
        "warehouse": f"s3://{bucket}/wh",
        "s3.endpoint": endpoint,
        "s3.region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "s3.access-key-id": os.environ["AWS_ACCESS_KEY_ID"],
        "s3.secret-access-key": os.environ["AWS_SECRET_ACCESS_KEY"],
    })  # fmt: skip
    table, locations = _written(catalog)
    assert all(location.startswith(f"s3://{bucket}/") for location in locations)
    _check_every_snapshot(duckdb_iceberg, table, locations, s3_endpoint=endpoint)
