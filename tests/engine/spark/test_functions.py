"""The Spark engine's pieces on small static DataFrames: the executors' verdicts through
``mapInArrow``, the events collected for the sinks, and the rows of Spark's own Kafka source
renamed to ours.

Next: ``test_differential.py`` (whole streaming runs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from backbeat.events.codec import encode_records
from backbeat.events.schema import Topic, arrow_schema
from backbeat.sinks.base import PartitionState, wanted_topics
from tests.events.samples import record

pytestmark = pytest.mark.integration


def test_the_executors_judge_each_partition_in_order(spark: Any) -> None:
    from backbeat.engine.eventtime import NO_TS
    from backbeat.engine.spark.engine import ddl
    from backbeat.engine.spark.prepare import WIDE, preparer
    from backbeat.engine.spark.sources import RAW

    good = [record(Topic.AUTH, i) for i in range(3)]
    late = dict(good[0], ts=good[0]["ts"] - 10 * 60_000, eventId="late-one")
    lines = [*encode_records([good[0], good[1], late, good[2]]), b"{oops"]
    rows = pa.table(
        {"topic": ["auth_events"] * 5, "partition": ["p"] * 5, "offset": [0, 1, 2, 3, 4],
         "next": [1, 2, 3, 4, 5], "value": lines},
        schema=RAW,
    )  # fmt: skip
    frame = spark.createDataFrame(rows).repartition(1)
    now = int(good[2]["ts"]) + 1000
    out = frame.mapInArrow(preparer({}, 120_000, None, now), ddl(WIDE)).toArrow()
    kinds = sorted(zip(out["_kind"].to_pylist(), out["_offset"].to_pylist(), strict=True),
                   key=lambda k: (k[0], k[1] or -1))  # fmt: skip
    assert kinds == [("dead", 4), ("event", 0), ("event", 1), ("event", 3), ("late", 2),
                     ("mark", None)]  # fmt: skip
    mark = out.filter(pa.compute.equal(out["_kind"], "mark")).to_pylist()[0]
    assert mark["_position"] == 5
    assert mark["_max_ts"] == max(int(r["ts"]) for r in good) != NO_TS


def test_only_the_topics_a_sink_wants_come_to_the_driver(spark: Any, tmp_path: Path) -> None:
    from backbeat.engine.spark.engine import _collect
    from backbeat.sinks.lake.sink import LakeSink

    counts = {Topic.LISTEN: 2, Topic.PAGE_VIEW: 1, Topic.AUTH: 3, Topic.STATUS_CHANGE: 0}
    views = {
        t: spark.createDataFrame(pa.Table.from_pylist([record(t, i) for i in range(max(n, 1))],
                                                      schema=arrow_schema(t))).limit(n)
        for t, n in counts.items()
    }  # fmt: skip
    assert wanted_topics([]) == {Topic.LISTEN}
    lake = LakeSink(str(tmp_path))
    cases = [([], {Topic.LISTEN}), ([lake], {Topic.LISTEN, Topic.PAGE_VIEW, Topic.AUTH})]
    for sinks, topics in cases:
        got = _collect(views, wanted_topics(sinks))
        assert set(got) == topics  # a topic without events is absent
        for topic, table in got.items():
            assert table.schema == arrow_schema(topic)
            assert table.num_rows == counts[topic]


def test_spark_kafka_rows_are_renamed_to_ours(spark: Any) -> None:
    from backbeat.engine.spark.native import as_records, starting_offsets

    kafka_rows = spark.createDataFrame(
        [("t.listen_events", 2, 41, b"{}"), ("other", 0, 7, b"x")],
        "topic STRING, partition INT, offset BIGINT, value BINARY",
    )
    got = as_records(kafka_rows, {"t.listen_events": "listen_events"}).collect()
    assert [tuple(r) for r in got] == [
        ("listen_events", "kafka:t.listen_events:2", 41, 42, b"{}"),
        ("other", "kafka:other:0", 7, 8, b"x"),
    ]
    positions = {"kafka:t.listen_events:2": PartitionState("listen_events", 42, 0),
                 "/a/file.jsonl": PartitionState("auth_events", 9, 0)}  # fmt: skip
    topics = {"t.listen_events": "listen_events"}
    assert json.loads(starting_offsets(topics, positions, "earliest")) == {
        "t.listen_events": {"2": 42}
    }
    assert starting_offsets(topics, {}, "latest") == "latest"


def test_without_the_connector_the_python_source_reads_kafka(spark: Any) -> None:
    from backbeat.engine.spark.native import native_kafka

    assert native_kafka(spark) is False  # no connector jar in this environment


def test_available_now_reads_what_was_there_at_the_start_in_batches(tmp_path: Path) -> None:
    pytest.importorskip("pyspark", reason="the Spark tests need backbeat[spark] (PySpark)")
    from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxRows

    from backbeat.engine.spark.sources import JsonlStreamReader

    path = tmp_path / "listen_events.jsonl"
    path.write_bytes(b"".join(b'{"n": %d}\n' % i for i in range(10)) + b'{"n": 10')
    reader = JsonlStreamReader({"files": json.dumps([str(path)]), "maxRows": "4",
                                "follow": "true"})  # fmt: skip
    reader.prepareForTriggerAvailableNow()
    with path.open("ab") as fh:  # written after the query started: not this run's
        fh.write(b"}\n" + b'{"n": 11}\n' * 5)
    ends, start = [], reader.initialOffset()
    while (end := reader.latestOffset(start, reader.getDefaultReadLimit())) != start:
        ends.append(end[str(path)])
        start = end
    lines = path.read_bytes().split(b"\n")
    assert ends == [sum(len(x) + 1 for x in lines[:n]) for n in (4, 8, 10)]
    assert reader.latestOffset(start, ReadAllAvailable()) == start
    assert reader.latestOffset(start, ReadMaxRows(100)) == start
