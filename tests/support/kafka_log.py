"""Read whole Kafka topics back, independently of backbeat's source: a plain confluent-kafka
consumer assigned every partition from offset 0, stopping at each partition's end of log.

Next: ``tests/transport/kafka`` (the tests that check what landed in a topic).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, TopicPartition


@dataclass(frozen=True, slots=True)
class Record:
    """One record as the broker holds it."""

    topic: str
    partition: int
    offset: int
    value: bytes
    headers: dict[str, str]
    timestamp_ms: int
    key: bytes = b""


def read_topics(servers: str, topics: Sequence[str], timeout_s: float = 60.0) -> list[Record]:
    """Every record of ``topics``, in offset order per partition."""
    consumer = Consumer(
        {"bootstrap.servers": servers, "group.id": "tests-read", "enable.partition.eof": True,
         "log_level": 3}
    )  # fmt: skip
    try:
        meta = consumer.list_topics(timeout=10)
        parts = [TopicPartition(t, p, 0) for t in topics for p in meta.topics[t].partitions]
        consumer.assign(parts)
        pending = {(p.topic, p.partition) for p in parts}
        out: list[Record] = []
        deadline = time.monotonic() + timeout_s
        while pending:
            assert time.monotonic() < deadline, f"no end of log within {timeout_s}s: {pending}"
            for msg in consumer.consume(1000, 0.5):
                key = (msg.topic() or "", msg.partition() or 0)
                err = msg.error()
                if err is not None:
                    assert err.code() == KafkaError._PARTITION_EOF, err.str()
                    pending.discard(key)
                    continue
                headers = {k: (v or b"").decode() for k, v in msg.headers() or []}
                out.append(
                    Record(
                        *key,
                        msg.offset() or 0,
                        msg.value() or b"",
                        headers,
                        msg.timestamp()[1],
                        msg.key() or b"",
                    )
                )
        return out
    finally:
        consumer.close()
