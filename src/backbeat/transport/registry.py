"""Sources by name, imported lazily: ``sim`` (the in-process simulator), ``jsonl`` (files),
``kafka`` (a broker; extra ``backbeat[kafka]``).

Next: ``base.py`` (the contract), ``backbeat.wiring`` (which builds them from flags).
"""

from __future__ import annotations

from typing import Final

from backbeat.plugins import Plugin, Registry

SOURCES: Final = Registry(
    "source",
    Plugin(
        "source",
        "sim",
        "backbeat.transport.inprocess:SimulatorSource",
        "the simulator in this process: typed Arrow, no broker, no files",
    ),
    Plugin(
        "source",
        "jsonl",
        "backbeat.transport.jsonl:JsonlSource",
        "JSONL files, one per topic, position = byte offset",
    ),
    Plugin(
        "source",
        "kafka",
        "backbeat.transport.kafka.source:KafkaSource",
        "Kafka topics, position = offset; a consumer group with --group",
        extra="kafka",
        needs=("confluent_kafka",),
    ),
)
