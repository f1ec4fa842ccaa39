"""The warehouse end to end through the real commands: ``backbeat stream --lake`` writes a
lake from a JSONL log crossing several hours, ``backbeat batch run`` loads every finished
hour into Iceberg staging tables and de-duplicates listens into the gold table; then the
rows per hour must equal the independent count of distinct events, read back by pyiceberg
and by the isolated DuckDB 1.5.5 Iceberg reader alike; a second delivery written into the
lake days later is loaded again and de-duplicated away; kill -9 during a load or a dedup,
rerun: nothing missing, nothing doubled; time travel returns the pre-load snapshot; a column
added to the contract reads old files as null; an S3 lake gives the same counts.

Next: ``backbeat/warehouse/run.py`` (the catch-up), ``test_model.py`` (the star schema).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pyarrow import fs

from backbeat.events.schema import Topic
from backbeat.sinks.lake.layout import HOUR_MS, Lake, part_name
from backbeat.warehouse import catalog
from backbeat.warehouse.catalog import GOLD, Warehouse
from backbeat.warehouse.dedup import dedup_hour
from backbeat.warehouse.load import load_hour
from backbeat.warehouse.reader import WarehouseQuery, ask
from backbeat.warehouse.run import RunReport, catch_up
from tests.support.eventlog import Trouble, generate, write_log
from tests.support.harness import STREAM_CLI
from tests.support.iceberg_duckdb import IcebergReader
from tests.support.malformed import STANDARD

pytestmark = pytest.mark.integration

CLI = (sys.executable, "-m", "backbeat")
TROUBLE = Trouble(exact_dups=30, key_dups=0, late=0, late_allowed=0, late_dups=0,
                  malformed=len(STANDARD))  # fmt: skip
"""Exact duplicates (the engine drops them) and malformed lines only: the valid events are
exactly the generated ones."""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, env=_env(),
                          timeout=300, check=False)  # fmt: skip
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def _stream(log: Path, store: Path, lake: str, *extra: str) -> None:
    head, rest = STREAM_CLI[:-2], STREAM_CLI[-2:]
    done = subprocess.run([*head, *rest, "--input", str(log), "--store", str(store),
                           "--batch-size", "2000", "--lake", lake, *extra],
                          capture_output=True, text=True, env=_env(), timeout=300,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def _per_hour(table: pa.Table) -> Counter[int]:
    ts = table.column("ts")
    ms = ts.cast(pa.int64()) if pa.types.is_integer(ts.type) else None
    if ms is None:  # a timestamp[us]
        ms = pc.divide(ts.cast(pa.int64()), 1000)
    return Counter(v // HOUR_MS for v in ms.to_pylist())


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[Topic, pa.Table]]:
    tables = generate(160, 6 * 60, seed=51)  # six hours of sessions
    folder = tmp_path_factory.mktemp("warehouse-log")
    return write_log(folder / "in", tables, seed=52, trouble=TROUBLE).directory, tables


@pytest.fixture(scope="module")
def lake(
    events: tuple[Path, dict[Topic, pa.Table]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    folder = tmp_path_factory.mktemp("warehouse-lake")
    _stream(events[0], folder / "store", str(folder / "lake"))
    return folder / "lake"


@pytest.fixture
def copy(lake: Path, tmp_path: Path) -> tuple[Path, str]:
    """A copy of the module's lake and a warehouse URI of this test's own."""
    mine = tmp_path / "lake"
    shutil.copytree(lake, mine)
    return mine, f"sqlite:///{tmp_path / 'wh.db'}"


def _open(lake: Path | str, uri: str, options: Mapping[str, str] | None = None) -> Warehouse:
    return Warehouse.open(Lake.open(str(lake), options), uri)


def _catch_up(wh: Warehouse) -> RunReport:
    """``batch run`` in this process (its command is run by the tests above)."""
    return catch_up(wh, now_ms=2**53)


def _gold_problems(wh: Warehouse, listens: pa.Table) -> list[str]:
    gold = wh.refresh(GOLD).scan().to_arrow()
    problems = []
    if gold.num_rows != len(set(gold.column("eventId").to_pylist())):
        problems.append("an eventId twice in the gold table")
    keys = Counter(zip(gold.column("sessionId").to_pylist(),
                       gold.column("itemInSession").to_pylist(), strict=True))  # fmt: skip
    if any(n > 1 for n in keys.values()):
        problems.append("a (sessionId, itemInSession) twice in the gold table")
    if _per_hour(gold) != _per_hour(listens):
        problems.append(f"rows per hour {_per_hour(gold)} != {_per_hour(listens)}")
    return problems


def test_run_loads_every_hour_and_the_gold_rows_are_the_distinct_listens(
    events: tuple[Path, dict[Topic, pa.Table]],
    copy: tuple[Path, str],
    duckdb_iceberg: IcebergReader,
) -> None:
    _, tables = events
    lake, uri = copy
    first = json.loads(_cli("--json", "batch", "run", "--lake", str(lake), "--warehouse", uri,
                            "--model").stdout.splitlines()[-1])  # fmt: skip
    assert first["hours_loaded"] == sum(len(Lake.open(str(lake)).hours(t)) for t in Topic)
    wh = _open(lake, uri)
    for topic in Topic:
        staged = wh.refresh(topic.value).scan().to_arrow()
        assert _per_hour(staged) == _per_hour(tables[topic]), topic
    assert _gold_problems(wh, tables[Topic.LISTEN]) == []
    assert first["model"]["fact_streams"] == tables[Topic.LISTEN].num_rows  # --model
    again = _catch_up(wh)
    assert (again.loaded, again.deduplicated) == (0, 0)

    # The independent reader: DuckDB 1.5.5's Iceberg extension over the tables' metadata.
    gold = wh.refresh(GOLD)
    rows = duckdb_iceberg.query(
        "SELECT epoch_ms(ts) // 3600000 AS hour, count(*) AS n, count(DISTINCT eventId) AS ids"
        " FROM gold GROUP BY 1 ORDER BY 1",
        {"gold": gold.metadata_location},
    )
    assert {r["hour"]: r["n"] for r in rows} == dict(_per_hour(tables[Topic.LISTEN]))
    assert all(r["n"] == r["ids"] for r in rows)


def test_a_second_delivery_days_later_is_loaded_and_deduplicated_away(
    events: tuple[Path, dict[Topic, pa.Table]], copy: tuple[Path, str]
) -> None:
    _, tables = events
    lake, uri = copy
    wh = _open(lake, uri)
    _catch_up(wh)
    hour = Lake.open(str(lake)).hours(Topic.LISTEN)[2]
    folder = Path(Lake.open(str(lake)).folder(Topic.LISTEN, hour))
    again = pa.concat_tables(pq.read_table(p) for p in sorted(folder.glob("part-*.parquet")))
    pq.write_table(again, folder / part_name(999_999))  # another writer's late batch
    report = _catch_up(wh)
    assert (report.loaded, report.deduplicated) == (1, 1)
    staged = wh.refresh(Topic.LISTEN.value).scan().to_arrow()
    assert _per_hour(staged)[hour] == 2 * _per_hour(tables[Topic.LISTEN])[hour]
    assert _gold_problems(wh, tables[Topic.LISTEN]) == []


@pytest.mark.parametrize(("step", "after"), [("load", 5), ("dedup", 2)])
def test_kill9_during_the_hourly_jobs_then_rerun_loses_and_doubles_nothing(
    events: tuple[Path, dict[Topic, pa.Table]], copy: tuple[Path, str], step: str, after: int
) -> None:
    _, tables = events
    lake, uri = copy
    command = [*CLI, "--log-level", "INFO", "batch", "run", "--lake", str(lake),
               "--warehouse", uri]  # fmt: skip
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, env=_env())  # fmt: skip
    assert proc.stderr is not None
    seen = 0
    for line in proc.stderr:
        seen += f" {step}: " in line
        if seen == after:
            proc.kill()
            break
    proc.wait(timeout=60)
    proc.stderr.close()
    assert proc.returncode == -9, f"the run ended before {after} {step} steps"
    wh = _open(lake, uri)
    _catch_up(wh)
    for topic in Topic:
        assert _per_hour(wh.refresh(topic.value).scan().to_arrow()) == _per_hour(tables[topic])
    assert _gold_problems(wh, tables[Topic.LISTEN]) == []


def test_time_travel_returns_the_snapshot_before_a_load(copy: tuple[Path, str]) -> None:
    lake, uri = copy
    hours = Lake.open(str(lake)).hours(Topic.LISTEN)
    first, second = hours[1], hours[2]

    wh = _open(lake, uri)

    def load_and_dedup(hour: int) -> None:
        dedup_hour(wh, hour, load_hour(wh, Topic.LISTEN, hour).fingerprint)

    def active(*extra: str) -> list[str]:
        out = _cli("--json", "query", "warehouse", "active-users", "--lake", str(lake),
                   "--warehouse", uri, *extra).stdout  # fmt: skip
        return [row["hour"] for row in json.loads(out)]

    load_and_dedup(first)
    before = wh.refresh(GOLD).current_snapshot()
    assert before is not None
    load_and_dedup(second)
    assert len(ask(wh, WarehouseQuery.ACTIVE_USERS)) == 2
    assert len(active("--as-of", str(before.snapshot_id))) == 1
    at = datetime.fromtimestamp(before.timestamp_ms / 1000, tz=UTC).isoformat()
    assert len(ask(wh, WarehouseQuery.ACTIVE_USERS, as_of=at)) == 1
    bad = _cli("query", "warehouse", "active-users", "--lake", str(lake), "--warehouse", uri,
               "--as-of", "12345", check=False)  # fmt: skip
    assert bad.returncode == 1
    assert "no such snapshot" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_a_column_added_to_the_contract_reads_old_files_as_null(
    copy: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, uri = copy
    first, second = Lake.open(str(lake)).hours(Topic.LISTEN)[1:3]
    full = catalog.table_schema
    older = full(Topic.LISTEN).remove(full(Topic.LISTEN).get_field_index("mood"))
    monkeypatch.setattr(catalog, "table_schema", lambda topic: older)  # yesterday's contract
    wh = _open(lake, uri)
    load_hour(wh, Topic.LISTEN, first)
    table = wh.refresh(Topic.LISTEN.value)
    assert "mood" not in table.schema().column_names
    old_files = set(table.inspect.files().column("file_path").to_pylist())
    monkeypatch.setattr(catalog, "table_schema", full)  # today's: one column more
    wh = _open(lake, uri)
    load_hour(wh, Topic.LISTEN, second)
    table = wh.refresh(Topic.LISTEN.value)
    assert "mood" in table.schema().column_names
    assert old_files <= set(table.inspect.files().column("file_path").to_pylist())  # no rewrite
    rows = table.scan().to_arrow()
    hour = pc.divide(rows.column("ts").cast(pa.int64()), 3_600_000_000)
    moods = rows.column("mood")
    assert pc.all(pc.is_null(moods.filter(pc.equal(hour, first)))).as_py()
    assert pc.all(pc.is_valid(moods.filter(pc.equal(hour, second)))).as_py()
    # The lake side: a file written before the column existed reads it as null.
    folder = Path(Lake.open(str(lake)).folder(Topic.LISTEN, first))
    old = pq.read_table(next(folder.glob("part-*.parquet")))
    pq.write_table(old.drop_columns(["mood"]), folder / part_name(999_998))
    read = Lake.open(str(lake)).read_hour(Topic.LISTEN, first)
    assert read.column("mood").null_count == old.num_rows


def test_an_s3_lake_gives_the_same_counts(
    events: tuple[Path, dict[Topic, pa.Table]],
    lake: Path,
    tmp_path: Path,
    s3_bucket: tuple[str, str],
) -> None:
    _, tables = events
    endpoint, bucket = s3_bucket
    url = f"s3://{bucket}/raw"
    s3 = Lake.open(url, {"endpoint": endpoint}).filesystem
    fs.copy_files(str(lake), f"{bucket}/raw", destination_filesystem=s3)  # the sink's own S3
    # writes are tested in tests/sinks/test_lake.py
    uri = f"sqlite:///{tmp_path / 'wh.db'}"
    wh = _open(url, uri, {"endpoint": endpoint})
    _catch_up(wh)
    assert wh.refresh(GOLD).location().startswith(f"s3://{bucket}/raw/iceberg/")
    for topic in Topic:
        assert _per_hour(wh.refresh(topic.value).scan().to_arrow()) == _per_hour(tables[topic])
    assert _gold_problems(wh, tables[Topic.LISTEN]) == []


def test_a_postgresql_catalog_holds_the_same_warehouse(
    events: tuple[Path, dict[Topic, pa.Table]], copy: tuple[Path, str], postgres_url: str
) -> None:
    _, tables = events
    lake, _ = copy
    with _open(lake, postgres_url) as wh:  # pyiceberg's SQL catalog on PostgreSQL
        _catch_up(wh)
    with _open(lake, postgres_url) as again:
        assert _gold_problems(again, tables[Topic.LISTEN]) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("batch", "run"), "give --lake FOLDER|s3://bucket/prefix"),
        (("batch", "run", "--lake", "{lake}", "--warehouse", "foo://x"),
         "--warehouse foo://x: Could not infer the catalog type"),
        (("batch", "run", "--lake", "{lake}", "--grace", "5x"), "--grace '5x': write a duration"),
        (("batch", "load-hour", "--lake", "{lake}", "--year", "2023", "--month", "2", "--day",
          "30", "--hour", "1"), "day is out of range for month"),
        (("batch", "run", "--lake", "{lake}", "--warehouse-option", "nokey"),
         "--warehouse-option 'nokey': write it as KEY=VALUE"),
        (("query", "warehouse", "nope", "--lake", "{lake}"), "no warehouse query 'nope'"),
        (("query", "warehouse", "top-songs", "--lake", "{lake}"),
         "the warehouse has no table backbeat.listens yet"),
        (("query", "top-songs", "--lake", "{lake}"), "go with: query warehouse"),
        (("query", "warehouse", "--lake", "{lake}"), "name a warehouse query after 'warehouse'"),
    ],
)  # fmt: skip
def test_bad_warehouse_commands_are_one_line(
    args: tuple[str, ...], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from backbeat.commands import app

    monkeypatch.chdir(tmp_path)  # the default catalog goes to ./backbeat-data
    result = CliRunner().invoke(app, [a.format(lake=tmp_path / "lake") for a in args])
    assert result.exit_code == 1, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 2  # one message (rich may wrap it once)
