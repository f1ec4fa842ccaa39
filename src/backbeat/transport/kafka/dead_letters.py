"""Dead letters to Kafka: each bad record to ``<topic>.dlq`` with why and where it came from.

:meth:`DeadLetterProducer.publish` sends rows of dead letters (topic, partition, offset,
reason, raw bytes) each, with its original bytes and key-less, to the dead-letter topic of
the Kafka topic it was read from, with headers ``reason``, ``source.topic``,
``source.partition``, ``source.offset`` and ``batch.id``, and waits until the broker has every
record (or raises). Dead letters of partitions that are not Kafka partitions are skipped: the
store keeps them. The result sink around it is ``backbeat.sinks.kafka_dlq``.

Next: ``source.py`` (where the partition names come from), ``backbeat.sinks.kafka_dlq``.
"""

from __future__ import annotations

import logging

import pyarrow as pa
from confluent_kafka import KafkaError, Message, Producer

from backbeat.errors import TransientError
from backbeat.transport.kafka.health import BrokerWatch
from backbeat.transport.kafka.settings import DLQ_SUFFIX, KafkaSettings
from backbeat.transport.kafka.source import parse_partition_name

log = logging.getLogger(__name__)
Headers = list[tuple[str, str | bytes | None]]


class DeadLetterProducer:
    """Writes dead letters to ``<source topic>.dlq``."""

    def __init__(self, settings: KafkaSettings, flush_timeout_s: float = 30.0) -> None:
        conf = {"enable.idempotence": "true", "acks": "all", "linger.ms": "5"}
        self.watch = BrokerWatch("dead-letter producer", settings.bootstrap_servers)
        self._producer = Producer({**self.watch.config(), **conf, **settings.to_librdkafka()})
        self._timeout = flush_timeout_s
        self._errors: list[str] = []
        self.published = 0

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err.str()}")

    def publish(self, dead: pa.Table, batch_ids: list[int]) -> int:
        """Send every row of ``dead`` (``DEAD_LETTER_SCHEMA`` columns), row ``i`` with the
        header ``batch.id`` = ``batch_ids[i]``, and wait for the broker.

        Raises:
            TransientError: a record was not acknowledged.
        """
        sent = 0
        rows = zip(
            dead.column("partition").to_pylist(),
            dead.column("offset").to_pylist(),
            dead.column("reason").to_pylist(),
            dead.column("raw").to_pylist(),
            batch_ids,
            strict=True,
        )
        for partition, offset, reason, raw, batch_id in rows:
            source = parse_partition_name(partition)
            if source is None:
                continue
            topic, number = source
            headers: Headers = [
                ("reason", reason.encode()),
                ("source.topic", topic.encode()),
                ("source.partition", str(number).encode()),
                ("source.offset", str(offset).encode()),
                ("batch.id", str(batch_id).encode()),
            ]
            self._send(topic + DLQ_SUFFIX, raw, headers)
            sent += 1
        if not sent:
            return 0
        left = self._producer.flush(self._timeout)
        if left or self._errors:
            problems, self._errors = self._errors, []
            raise TransientError(
                f"{left + len(problems)} dead letters were not accepted by Kafka "
                f"({'; '.join(problems[:3]) or 'flush timed out'})"
            )
        self.published += sent
        return sent

    def _send(self, topic: str, raw: bytes, headers: Headers) -> None:
        while True:
            try:
                self._producer.produce(
                    topic, value=raw, headers=headers, on_delivery=self._on_delivery
                )
                return
            except BufferError:
                self._producer.poll(0.1)

    def close(self) -> None:
        self._producer.flush(self._timeout)
