"""What a Spark run reads, and where a bounded one ends.

A :class:`SourcePlan` is built from the source's :class:`~backbeat.transport.base.SourceSpec`
(JSONL files or Kafka topics, as the embedded engine would read them); it makes the streaming
DataFrame (backbeat's Python sources, or Spark's Kafka connector when present: ``native.py``)
starting at the store's positions, says which partitions may still deliver (the topics'
watermarks wait for those, as the embedded sources say) and whether a bounded run is done:
files not followed read to their end, Kafka read to the ends seen at the start
(``--until-end``).

Next: ``engine.py`` (the caller), ``sources.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from backbeat.engine.spark.native import native_kafka, native_kafka_frame
from backbeat.engine.spark.sources import kafka_bounds, kafka_client
from backbeat.errors import ConfigError
from backbeat.sinks.base import PartitionState
from backbeat.transport.base import SourceSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

FORMATS: Final = {"jsonl": "backbeat-jsonl", "kafka": "backbeat-kafka"}

Partitions = Mapping[str, PartitionState]


class SourcePlan:
    """The source of a Spark run: its frame, its open partitions, its end."""

    def __init__(self, spec: SourceSpec | None) -> None:
        """Raises:
        ConfigError: a source Spark cannot read, or an option it does not take."""
        if spec is None or spec.kind not in FORMATS:
            raise ConfigError(
                "the Spark engine reads JSONL files or Kafka: give --input or --topics"
            )
        if spec.options.get("group"):
            raise ConfigError(
                "--group is for embedded engines sharing a store: Spark shares the work among "
                "its executors, drop --group"
            )
        if spec.options.get("from_ms") is not None:
            raise ConfigError(
                "--from a time is for the embedded engine: with --engine spark, start from "
                "earliest or latest"
            )
        self.kind = spec.kind
        self.options: Mapping[str, Any] = spec.options
        self.ends: dict[str, tuple[int, int]] | None = None  # --until-end: where to stop
        if spec.kind == "kafka" and spec.options.get("stop_at_end"):
            client = kafka_client(spec.options["config"])
            try:
                self.ends = kafka_bounds(client, spec.options["topics"])
            finally:
                client.close()

    def frame(self, spark: SparkSession, partitions: Partitions, max_rows: int) -> DataFrame:
        """The streaming frame of ``sources.RAW`` rows, from the store's positions."""
        spec = self.options
        if self.kind == "kafka" and native_kafka(spark):
            return native_kafka_frame(spark, spec, partitions, max_rows)
        options: dict[str, str] = {
            "start": json.dumps({n: p.position for n, p in partitions.items()}),
            "maxRows": str(max_rows),
        }
        if self.kind == "jsonl":
            options["files"] = json.dumps(list(spec["files"]))
            options["follow"] = "true" if spec.get("follow") else "false"
        else:
            options.update(config=json.dumps(spec["config"]), topics=json.dumps(spec["topics"]),
                           **{"from": str(spec["from"])})  # fmt: skip
        return spark.readStream.format(FORMATS[self.kind]).options(**options).load()

    def open_partitions(self, partitions: Partitions) -> dict[str, str]:
        """Partitions that may still deliver, with their topics (unfinished files; the
        topics' Kafka partitions not yet at their end)."""
        if self.kind == "jsonl":
            follow = bool(self.options.get("follow"))
            return {
                n: os.path.basename(n).removesuffix(".jsonl")
                for n in self.options["files"]
                if follow or _position(partitions, n, 0) < _size(n)
            }
        topics: dict[str, str] = self.options["topics"]
        names = self.ends or dict.fromkeys(partitions, (0, 0))
        return {
            n: topics[cluster]
            for n, (low, high) in names.items()
            if (cluster := n.split(":", 1)[1].rpartition(":")[0]) in topics
            and not (self.ends and _position(partitions, n, low) >= high)
        }

    def at_end(self, partitions: Partitions) -> bool:
        """A bounded source read to its end (files not followed, or ``--until-end``)."""
        if self.kind == "jsonl":
            return not self.options.get("follow") and all(
                _position(partitions, n, 0) >= _size(n) for n in self.options["files"]
            )
        return self.ends is not None and all(
            _position(partitions, n, low) >= high for n, (low, high) in self.ends.items()
        )


def _position(partitions: Partitions, name: str, otherwise: int) -> int:
    part = partitions.get(name)
    return otherwise if part is None else part.position


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
