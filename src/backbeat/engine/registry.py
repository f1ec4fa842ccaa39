"""Engines by ``--engine`` name, imported lazily: ``embedded`` and ``spark`` (``backbeat[spark]``).

Each entry builds an :class:`~backbeat.engine.base.Engine` from a source, the primary store,
the result sinks, settings and an ``on_batch`` callback.

Next: ``base.py`` (the contract), ``pipeline.py`` (the embedded engine).
"""

from __future__ import annotations

from typing import Final

from backbeat.plugins import Plugin, Registry

ENGINES: Final = Registry(
    "engine",
    Plugin(
        "engine",
        "embedded",
        "backbeat.engine.pipeline:Pipeline",
        "micro-batches in this process: no JVM, broker or server (the default)",
    ),
    Plugin(
        "engine",
        "spark",
        "backbeat.engine.spark.engine:SparkEngine",
        "Apache Spark Structured Streaming, local or on a cluster (--master)",
        extra="spark",
        needs=("pyspark",),
    ),
)
