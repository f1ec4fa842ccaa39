"""Composition root: builds runs, simulators, sources and producers from CLI-level choices.

Commands stay thin by calling one function here; library modules never import this package.
``pipeline.py`` assembles source -> engine -> store and sinks by name; ``simulation.py`` runs
the simulator into files or live; ``produce.py`` runs it into Kafka.

Next: ``backbeat.commands`` (the callers).
"""

from backbeat.wiring.pipeline import (
    Assembly,
    RunPlan,
    assemble,
    jsonl_source,
    kafka_source,
    key_value,
    sink_specs,
    web_server,
)
from backbeat.wiring.produce import KafkaDemo, produce_batches, produce_chunks, produce_to_kafka
from backbeat.wiring.recommend import recommending
from backbeat.wiring.simulation import (
    live_settings,
    live_source,
    simulator_settings,
    write_jsonl_run,
)

__all__ = [
    "Assembly",
    "KafkaDemo",
    "RunPlan",
    "assemble",
    "jsonl_source",
    "kafka_source",
    "key_value",
    "live_settings",
    "live_source",
    "produce_batches",
    "produce_chunks",
    "produce_to_kafka",
    "recommending",
    "simulator_settings",
    "sink_specs",
    "web_server",
    "write_jsonl_run",
]
