"""The SparkSession the engine runs on: local, a standalone cluster, YARN or Kubernetes.

``--master`` picks the cluster (default ``local[*]``; under ``spark-submit``, through
``backbeat/commands/spark_submit.py``, the one it was given); ``--spark-conf k=v`` sets
anything else. Locally the executors' Python is this one (``PYSPARK_PYTHON``), so they import
the same backbeat. backbeat's Python data sources
are registered on the session (``sources.py``).

Next: ``engine.py`` (the engine), ``sources.py``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from backbeat.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULTS: dict[str, str] = {
    "spark.app.name": "backbeat",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def require_java() -> None:
    """Raises ConfigError (one line: what to install) when no Java runtime is found."""
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", "java")):
        return
    if shutil.which("java") is None:
        raise ConfigError(
            "the Spark engine needs a Java 17+ runtime: install one (e.g. `apt-get install "
            "openjdk-17-jre-headless`) or set JAVA_HOME"
        )


def _submitted_master() -> str | None:
    """The master ``spark-submit`` gave this driver, or None when not under it."""
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # spark-submit started the JVM first
        return None
    from pyspark import SparkConf

    return SparkConf().get("spark.master", None)


def session(master: str | None, conf: Mapping[str, str]) -> SparkSession:
    """The session for a run: an active one (``spark-submit``, tests) or a new one.

    Raises:
        ConfigError: PySpark or Java is missing.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("the Spark engine needs PySpark: pip install 'backbeat[spark]'") from None
    from backbeat.engine.spark.sources import JsonlDataSource, KafkaDataSource

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        spark = active
    else:
        require_java()
        submitted = _submitted_master()  # under spark-submit: its --master
        chosen = master or submitted or "local[*]"
        builder = SparkSession.builder
        if master is not None or submitted is None:
            builder = builder.master(chosen)
        settings = {**DEFAULTS, **conf}
        if chosen.startswith("local"):
            # The JVM starts Python workers (executors, data source planning) with this.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        for key, value in settings.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
    for key, value in conf.items():
        if active is not None and master is None:
            spark.conf.set(key, value)
    spark.dataSource.register(JsonlDataSource)
    spark.dataSource.register(KafkaDataSource)
    return spark
