"""One SparkSession (``local[2]``) for every Spark test of the session; a way to run the
Spark engine in this process over JSONL files or Kafka into a store.

Spark needs PySpark (``backbeat[spark]``) and Java: without them these tests skip, saying
which is missing.

Next: ``test_differential.py``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backbeat.engine.base import EngineSettings, RunReport
from backbeat.transport.base import Source


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    pytest.importorskip("pyspark", reason="the Spark tests need backbeat[spark] (PySpark)")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("the Spark tests need a Java 17+ runtime (java on PATH or JAVA_HOME)")
    from pyspark.sql import SparkSession

    from backbeat.engine.spark.session import DEFAULTS

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master("local[2]")
    for key, value in {**DEFAULTS, "spark.sql.shuffle.partitions": "4",
                       "spark.ui.enabled": "false"}.items():  # fmt: skip
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def run_spark(
    source: Source, store: Path, checkpoint: Path, batch: int, **options: str
) -> RunReport:
    """One bounded run of the Spark engine (on the session's SparkSession) into ``store``."""
    from backbeat import wiring

    settings = EngineSettings(
        max_batch_events=batch, options={"checkpoint": str(checkpoint), **options}
    )
    plan = wiring.RunPlan(store=str(store), engine="spark", settings=settings)
    with wiring.assemble(source, plan) as run:
        return run.engine.run(timeout=600)
