"""Where a producer of replayed histories stands: each stream's position, kept in Kafka.

``backbeat replay --bootstrap-servers`` sends only what the cluster does not have yet. It keeps
the position of every replayed stream (``replay:<listener>``: the event time it has reached)
as the latest record of that key in one compacted topic, ``<prefix>backbeat.replay-positions``
(one partition), written after the events themselves are acknowledged. Reading it back is
reading that topic to its end.

Next: ``backbeat.wiring.replay`` (the caller), ``producer.py`` (the events).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Final

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from backbeat.errors import SourceError, TransientError
from backbeat.transport.kafka.admin import TopicSpec, create_topics
from backbeat.transport.kafka.settings import KafkaSettings

TOPIC: Final = "backbeat.replay-positions"


def positions_topic(settings: KafkaSettings) -> str:
    """The cluster name of the positions topic (created, compacted, when missing)."""
    name = settings.topic(TOPIC)
    create_topics(settings, [name], TopicSpec(partitions=1, compact=True))
    return name


def read_positions(settings: KafkaSettings, timeout_s: float = 30.0) -> dict[str, int]:
    """The latest position of every stream.

    Raises:
        SourceError: the topic cannot be read to its end in ``timeout_s``.
    """
    name = positions_topic(settings)
    consumer = Consumer(
        {**settings.to_librdkafka(), "group.id": "backbeat-replay", "enable.auto.commit": False,
         "enable.partition.eof": True}
    )  # fmt: skip
    positions: dict[str, int] = {}
    try:
        consumer.assign([TopicPartition(name, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        return positions
                    raise SourceError(f"reading {name}: {err.str()}")
                key, value = msg.key(), msg.value()
                if key is not None and value is not None:
                    positions[key.decode()] = int(value)
        raise SourceError(f"reading {name}: no end of the topic within {timeout_s:g} s")
    finally:
        consumer.close()


def write_positions(
    settings: KafkaSettings, positions: Mapping[str, int], timeout_s: float = 30.0
) -> None:
    """Record positions (after the events they cover were acknowledged).

    Raises:
        TransientError: the broker did not take them.
    """
    name = positions_topic(settings)
    producer = Producer({**settings.to_librdkafka(), "enable.idempotence": True, "acks": "all"})
    failed: list[str] = []

    def delivered(err: KafkaError | None, _: object) -> None:
        if err is not None:
            failed.append(err.str())

    for stream, position in positions.items():
        producer.produce(name, key=stream.encode(), value=str(position).encode(),
                         on_delivery=delivered)  # fmt: skip
    left = producer.flush(timeout_s)
    if left or failed:
        raise TransientError(
            f"the replay's positions were not recorded ({'; '.join(failed[:2]) or 'timed out'}): "
            "the next replay sends the same events again"
        )
