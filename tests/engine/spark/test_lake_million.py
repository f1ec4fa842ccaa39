"""A million events through the lake into Iceberg: every hour's gold rows are the distinct
listens, whoever reads them.

The suite's million-event log (duplicates within the engine's de-dup horizon, late and
malformed lines) is streamed by ``backbeat stream --lake``; then a second delivery of three
listen hours is written into the lake as another writer would days later (beyond any engine
horizon: the same events, in files of their own). Spark reads the lake's Parquet with Hive
partition discovery and counts what pyarrow counts; ``batch run`` loads every hour into the
staging tables (which keep the second delivery: rows per hour = the lake's) and de-duplicates
into the gold table, whose rows per hour must equal the oracle's count of distinct on-time
listens, read by pyiceberg and by the isolated DuckDB 1.5.5 Iceberg reader alike. (Spark
writing the lake is proven row for row against the embedded engine in ``test_lake.py`` on the
Spark test log; at a million events it is measured by ``benchmarks/bench_lake.py``: on two
cores Spark alone would take this test's whole budget.)

Next: ``tests/warehouse/test_warehouse.py`` (kill -9 during the hourly jobs, time travel).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from backbeat.events.schema import Topic
from backbeat.sinks.lake.layout import HOUR_MS, Lake, part_name
from backbeat.warehouse.catalog import GOLD, Warehouse
from backbeat.warehouse.run import catch_up
from tests.support.eventlog import EventLog
from tests.support.harness import STREAM_CLI
from tests.support.iceberg_duckdb import IcebergReader
from tests.support.lake import read_topic
from tests.support.oracle import Expected

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SECOND_DELIVERY = 3
"""Listen hours delivered twice."""


def _per_hour(ms: pa.Array | pa.ChunkedArray) -> Counter[int]:
    return Counter(v // HOUR_MS for v in ms.to_pylist())


def _fresh_listens_per_hour(expected: Expected) -> Counter[int]:
    """The oracle's distinct on-time listens per hour (its plays per genre and minute)."""
    hours: Counter[int] = Counter()
    for row in expected.metrics["genre_minute"]:
        hours[row["window_start"] // HOUR_MS] += row["plays"]
    return hours


def test_a_million_events_land_once_per_hour_in_the_gold_table(
    spark: Any,
    big_log: tuple[EventLog, Expected],
    tmp_path: Path,
    duckdb_iceberg: IcebergReader,
) -> None:
    log, expected = big_log
    lake = tmp_path / "lake"
    done = subprocess.run(
        [*STREAM_CLI, "--input", str(log.directory), "--store", str(tmp_path / "store"),
         "--batch-size", "50000", "--lake", str(lake)],
        capture_output=True, text=True, timeout=900, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["events_in"] >= 1_000_000

    fresh = _fresh_listens_per_hour(expected)
    opened = Lake.open(str(lake))
    listen_hours = opened.hours(Topic.LISTEN)
    assert sorted(fresh) == listen_hours
    twice = listen_hours[:SECOND_DELIVERY]
    for hour in twice:  # another writer's late batch: the same events again
        folder = Path(opened.folder(Topic.LISTEN, hour))
        rows = pa.concat_tables(pq.read_table(p) for p in sorted(folder.glob("part-*.parquet")))
        pq.write_table(rows, folder / part_name(10**9 + hour % 1000))

    # Spark reads the lake as it is and counts what pyarrow counts.
    for topic in Topic:
        ids = read_topic(str(lake), topic).to_table(columns=["eventId"]).column("eventId")
        frame = spark.read.parquet(str(lake / topic.value))
        assert frame.count() == len(ids)
        assert frame.select("eventId").distinct().count() == len(pc.unique(ids))
    lake_listens = read_topic(str(lake), Topic.LISTEN).to_table(columns=["ts"]).column("ts")
    delivered = _per_hour(lake_listens)
    assert {h: delivered[h] - fresh[h] for h in twice} == {h: fresh[h] for h in twice}
    assert all(delivered[h] == fresh[h] for h in listen_hours if h not in twice)

    # Every hour into Iceberg, de-duplicated.
    wh = Warehouse.open(opened, f"sqlite:///{tmp_path / 'wh.db'}")
    run = catch_up(wh, now_ms=2**53)
    assert run.deduplicated == len(listen_hours)
    staged = wh.refresh(Topic.LISTEN.value).scan(selected_fields=("ts",)).to_arrow()
    assert _per_hour(pc.divide(staged.column("ts").cast(pa.int64()), 1000)) == delivered
    gold = wh.refresh(GOLD)
    rows = gold.scan(selected_fields=("ts", "eventId")).to_arrow()
    assert _per_hour(pc.divide(rows.column("ts").cast(pa.int64()), 1000)) == fresh
    assert len(pc.unique(rows.column("eventId"))) == rows.num_rows

    independent = duckdb_iceberg.query(
        "SELECT epoch_ms(ts) // 3600000 AS hour, count(*) AS n, count(DISTINCT eventId) AS ids,"
        " count(DISTINCT (sessionId, itemInSession)) AS keys FROM gold GROUP BY 1",
        {"gold": gold.metadata_location},
    )
    assert {r["hour"]: r["n"] for r in independent} == dict(fresh)
    assert all(r["n"] == r["ids"] == r["keys"] for r in independent)
