"""The Spark engine gives the embedded engine's answers: every metric and every dead letter.

One deterministic log with every kind of trouble (duplicates of both kinds, late and
late-but-allowed events, late duplicates, malformed records) runs through the Spark engine
on ``local[2]``, in batches that cut it differently from the embedded engine's: from JSONL
files, the stored metrics must equal the independent oracle row for row, the dead letters be
exactly the malformed and late lines, and every metric equal the embedded engine's store;
from the test Kafka broker, metrics and dead letters equal the embedded engine's.

Next: ``conftest.py`` (the session), ``backbeat.engine.spark``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from backbeat.events.schema import Topic
from backbeat.transport.kafka.settings import KafkaSettings
from tests.engine.spark.conftest import Cluster, run_spark
from tests.support.eventlog import EventLog
from tests.support.harness import dead_letter_problems, metric_mismatches, run_once
from tests.support.kafka import clean_env, produce_log, stream_command
from tests.support.oracle import Expected
from tests.support.stores import all_metrics, duck_sql

pytestmark = pytest.mark.integration


def test_spark_from_jsonl_equals_the_oracle_and_the_embedded_engine(
    spark: Any, spark_log: tuple[EventLog, Expected], tmp_path: Path
) -> None:
    from backbeat.wiring import jsonl_source

    events, expected = spark_log
    report = run_spark(jsonl_source([events.directory], follow=False), tmp_path / "spark",
                       tmp_path / "checkpoint", batch=3_000)  # fmt: skip
    assert report.stopped_by == "exhausted"
    assert report.batches > 1
    problems = metric_mismatches(tmp_path / "spark", expected)
    problems += dead_letter_problems(tmp_path / "spark", events, expected)
    assert not problems, "\n".join(problems)
    late = sum(len(v) for v in expected.late.values())
    duplicates = sum(expected.duplicates.values())
    assert (report.events_in, report.duplicates, report.late, report.dead) == (
        sum(events.lines.values()), duplicates, late, len(events.of_kind("malformed"))
    )  # fmt: skip
    run_once(events.directory, tmp_path / "embedded", 10_000)
    assert all_metrics(tmp_path / "spark") == all_metrics(tmp_path / "embedded")


def test_spark_from_kafka_equals_the_embedded_engine(
    spark: Any, spark_log: tuple[EventLog, Expected], topics: KafkaSettings, tmp_path: Path
) -> None:
    """The same log in the test broker (each file in one partition, in order): the Spark
    engine's Python Kafka source and the embedded engine store the same metrics and dead
    letters."""
    from backbeat.wiring import kafka_source

    events, _ = spark_log
    produce_log(topics, events, exact_ends=True)
    done = subprocess.run(
        stream_command(topics, tmp_path / "embedded", "--until-end", "--batch-size", "5000"),
        capture_output=True, env=clean_env(), timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    cluster = [topics.topic(t.value) for t in Topic]
    source = kafka_source(topics, cluster, group=None, start="earliest", stop_at_end=True)
    report = run_spark(source, tmp_path / "spark", tmp_path / "checkpoint", batch=4_000)
    assert report.stopped_by == "exhausted"
    assert all_metrics(tmp_path / "spark") == all_metrics(tmp_path / "embedded")
    letters = 'SELECT partition, "offset", reason FROM dead_letters ORDER BY 1, 2'
    assert duck_sql(tmp_path / "spark", letters) == duck_sql(tmp_path / "embedded", letters)
    assert len(duck_sql(tmp_path / "spark", letters)) > 0


def test_a_loopback_standalone_cluster_reading_kafka_equals_the_embedded_engine(
    spark_cluster: Cluster,
    spark_log: tuple[EventLog, Expected],
    topics: KafkaSettings,
    tmp_path: Path,
) -> None:
    """The same differential from the test broker, the Spark driver in a child process
    (``backbeat stream --engine spark --master spark://...``) and its work on a standalone
    master and worker on 127.0.0.1."""
    events, _ = spark_log
    produce_log(topics, events, exact_ends=True)
    for store, extra in (
        ("embedded", ()),
        ("cluster", ("--engine", "spark", "--master", spark_cluster.master,
                     "--checkpoint", str(tmp_path / "checkpoint"),
                     *(a for c in spark_cluster.conf for a in ("--spark-conf", c)))),
    ):  # fmt: skip
        done = subprocess.run(
            stream_command(topics, tmp_path / store, "--until-end", "--batch-size", "4000", *extra),
            capture_output=True, env=clean_env(), timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert all_metrics(tmp_path / "cluster") == all_metrics(tmp_path / "embedded")
    letters = 'SELECT partition, "offset", reason FROM dead_letters ORDER BY 1, 2'
    assert duck_sql(tmp_path / "cluster", letters) == duck_sql(tmp_path / "embedded", letters)


def test_spark_submit_runs_the_stream_and_keeps_its_master(
    spark: Any, spark_log: tuple[EventLog, Expected], tmp_path: Path
) -> None:
    """``spark-submit --master local[2] submit.py --input ... --store ...``: the entry point a
    cluster runs, with the master spark-submit gives."""
    import pyspark

    from backbeat.commands import spark_submit as submit

    events, expected = spark_log
    spark_submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    done = subprocess.run(
        [str(spark_submit), "--master", "local[2]", "--conf", "spark.ui.enabled=false",
         submit.__file__, "--input", str(events.directory), "--store", str(tmp_path / "store"),
         "--checkpoint", str(tmp_path / "checkpoint"), "--batch-size", "5000"],
        capture_output=True, env={**clean_env(), "SPARK_LOCAL_IP": "127.0.0.1"},
        timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    problems = metric_mismatches(tmp_path / "store", expected)
    problems += dead_letter_problems(tmp_path / "store", events, expected)
    assert not problems, "\n".join(problems)
