"""Spark's own Kafka source, when the cluster has its connector: the same rows as ours.

With ``--packages org.apache.spark:spark-sql-kafka-0-10_2.13:<spark version>`` (or the jar on
the class path) Spark reads Kafka natively; the engine then uses it instead of its Python
source (``sources.py``), and renames its columns to the rows ``prepare.py`` reads: the topic
as backbeat names it, the partition as the embedded engine names it (``kafka:<topic>:<n>``),
the offset, the position after it and the value. Spark's source makes one task per Kafka
partition, in offset order, as ours does, and starts where the store's positions say.

Next: ``sources.py`` (the Python sources), ``engine.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from backbeat.sinks.base import PartitionState

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

PROVIDER: Final = "org.apache.spark.sql.kafka010.KafkaSourceProvider"


def native_kafka(spark: SparkSession) -> bool:
    """Whether Spark's Kafka connector is on the session's class path."""
    jvm: Any = spark.sparkContext._jvm
    try:
        jvm.java.lang.Class.forName(
            PROVIDER, False, jvm.Thread.currentThread().getContextClassLoader()
        )
    except Exception:  # py4j wraps the ClassNotFoundException
        return False
    return True


def starting_offsets(
    topics: Mapping[str, str], partitions: Mapping[str, PartitionState], start_from: str
) -> str:
    """Spark's ``startingOffsets``: the store's positions per topic and partition, ``-2``
    (earliest) or ``-1`` (latest) for the partitions the store does not know yet."""
    offsets: dict[str, dict[str, int]] = {}
    for name, part in partitions.items():
        kind, _, rest = name.partition(":")
        topic, _, number = rest.rpartition(":")
        if kind == "kafka" and topic in topics:
            offsets.setdefault(topic, {})[number] = part.position
    if not offsets:
        return start_from
    return json.dumps(offsets)


def as_records(frame: DataFrame, topics: Mapping[str, str]) -> DataFrame:
    """Rows of Spark's Kafka source as ``sources.RAW`` rows."""
    from pyspark.sql import functions as fn

    backbeat = fn.create_map(*[fn.lit(x) for pair in topics.items() for x in pair])
    return frame.select(
        fn.coalesce(backbeat[fn.col("topic")], fn.col("topic")).alias("topic"),
        fn.concat(
            fn.lit("kafka:"), fn.col("topic"), fn.lit(":"), fn.col("partition").cast("string")
        ).alias("partition"),
        fn.col("offset"),
        (fn.col("offset") + 1).alias("next"),
        fn.col("value"),
    )


def native_kafka_frame(
    spark: SparkSession,
    spec: Mapping[str, Any],
    partitions: Mapping[str, PartitionState],
    max_rows: int,
) -> DataFrame:
    """The streaming frame of Spark's Kafka source over ``spec``'s topics, as RAW rows."""
    topics: dict[str, str] = spec["topics"]
    reader = spark.readStream.format("kafka").options(
        **{f"kafka.{k}": str(v) for k, v in spec["config"].items()},
        subscribe=",".join(topics),
        startingOffsets=starting_offsets(topics, partitions, str(spec["from"])),
        maxOffsetsPerTrigger=str(max_rows),
        failOnDataLoss="true",
    )
    return as_records(reader.load(), topics)
