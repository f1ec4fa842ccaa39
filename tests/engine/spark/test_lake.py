"""The Spark engine fills the Parquet lake as the embedded engine does, and Spark reads it.

The Spark test log (duplicates, late and malformed lines) runs through the Spark engine on
``local[2]`` with ``--lake`` into one lake, and through the embedded engine (``backbeat
stream``, a child process) into another: both lakes must hold the same events, row for row,
in every topic and event hour, each valid on-time event once (as many as the oracle counts).
Then Spark itself reads each topic back with Hive partition discovery.

Next: ``conftest.py`` (the session, the log), ``tests/sinks/test_lake.py`` (the lake after a
kill), ``backbeat/sinks/lake/sink.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from backbeat.events.schema import Topic
from backbeat.sinks.base import SinkSpec
from tests.engine.spark.conftest import run_spark
from tests.support.eventlog import EventLog
from tests.support.harness import STREAM_CLI
from tests.support.lake import lake_problems, read_topic
from tests.support.oracle import Expected

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lakes(
    spark: Any, spark_log: tuple[EventLog, Expected], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """The log's lake as the Spark engine writes it, and as the embedded engine does."""
    from backbeat.wiring import jsonl_source

    events, _ = spark_log
    folder = tmp_path_factory.mktemp("spark-lake")
    report = run_spark(jsonl_source([events.directory], follow=False), folder / "spark-store",
                       folder / "checkpoint", batch=3_000, trigger="available-now",
                       sinks=(SinkSpec("lake", str(folder / "spark")),))  # fmt: skip
    assert report.stopped_by == "exhausted"
    assert report.batches > 1  # available-now still reads in batches of the read limit
    done = subprocess.run(
        [*STREAM_CLI, "--input", str(events.directory), "--store", str(folder / "store"),
         "--batch-size", "10000", "--lake", str(folder / "embedded")],
        capture_output=True, text=True, timeout=600, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1])["stopped_by"] == "exhausted"
    return folder / "spark", folder / "embedded"


def _rows(lake: Path, topic: Topic) -> pa.Table:
    """Every row of a topic, with its partition columns, in eventId order."""
    return read_topic(str(lake), topic).to_table().sort_by("eventId")


def test_the_spark_engine_writes_the_embedded_engines_lake(
    lakes: tuple[Path, Path], spark_log: tuple[EventLog, Expected]
) -> None:
    spark_lake, embedded_lake = lakes
    _, expected = spark_log
    embedded = {topic: _rows(embedded_lake, topic) for topic in Topic}
    assert lake_problems(spark_lake, None, [embedded]) == []
    for topic in Topic:
        name = f"{topic.value}.jsonl"
        fresh = expected.valid[name] - len(expected.late[name]) - expected.duplicates[name]
        assert embedded[topic].num_rows == fresh > 0, topic
        assert _rows(spark_lake, topic).equals(embedded[topic]), topic


def test_spark_reads_the_lake_back_with_hive_partitions(
    spark: Any, lakes: tuple[Path, Path]
) -> None:
    spark_lake, _ = lakes
    for topic in Topic:
        frame = spark.read.parquet(str(spark_lake / topic.value))
        assert {"year", "month", "day", "hour"} <= set(frame.columns), topic
        ids = read_topic(str(spark_lake), topic).to_table(columns=["eventId"]).column("eventId")
        assert frame.select("eventId").distinct().count() == len(pc.unique(ids)) > 0, topic
