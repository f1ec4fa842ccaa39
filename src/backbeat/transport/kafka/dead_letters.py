"""Dead letters to Kafka: each bad record to ``<topic>.dlq`` with why and where it came from.

The engine hands every batch's dead letters (the store's ``dead_letters`` rows: topic,
partition, offset, reason, raw bytes) to :meth:`DeadLetterProducer.publish` just before it
commits the batch. Each record goes, with its original bytes and key-less, to the dead-letter
topic of the Kafka topic it was read from, with headers ``reason``, ``source.topic``,
``source.partition`` and ``source.offset``. ``publish`` waits until the broker has every
record, and raises if it has not: then the batch is not committed and is read again, so the
dead-letter topic gets each bad record at least once (a crash between the flush and the
commit can repeat a record; the source headers identify repeats). Dead letters of
partitions that are not Kafka partitions are left to the store alone.

Next: ``source.py`` (where the partition names come from), ``backbeat.engine.pipeline``.
"""

from __future__ import annotations

import logging

import pyarrow as pa
from confluent_kafka import KafkaError, Message, Producer

from backbeat.errors import TransientError
from backbeat.sinks.base import Commit
from backbeat.transport.kafka.health import BrokerWatch
from backbeat.transport.kafka.settings import DLQ_SUFFIX, KafkaSettings
from backbeat.transport.kafka.source import parse_partition_name

log = logging.getLogger(__name__)
Headers = list[tuple[str, str | bytes | None]]


class DeadLetterProducer:
    """Writes dead letters to ``<source topic>.dlq``; :meth:`before_commit` is the engine hook."""

    def __init__(self, settings: KafkaSettings, flush_timeout_s: float = 30.0) -> None:
        conf = {"enable.idempotence": "true", "acks": "all", "linger.ms": "5"}
        self.watch = BrokerWatch("dead-letter producer", settings.bootstrap_servers)
        self._producer = Producer({**self.watch.config(), **conf, **settings.to_librdkafka()})
        self._timeout = flush_timeout_s
        self._errors: list[str] = []
        self.published = 0

    def before_commit(self, commit: Commit) -> None:
        """Engine hook: publish the batch's dead letters before the store commits it."""
        self.publish(commit.dead_letters)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err.str()}")

    def publish(self, dead: pa.Table) -> int:
        """Send every row of ``dead`` (``DEAD_LETTER_SCHEMA``) and wait for the broker.

        Raises:
            TransientError: a record was not acknowledged (the batch must not be committed).
        """
        sent = 0
        rows = zip(
            dead.column("partition").to_pylist(),
            dead.column("offset").to_pylist(),
            dead.column("reason").to_pylist(),
            dead.column("raw").to_pylist(),
            strict=True,
        )
        for partition, offset, reason, raw in rows:
            source = parse_partition_name(partition)
            if source is None:
                continue
            topic, number = source
            headers: Headers = [
                ("reason", reason.encode()),
                ("source.topic", topic.encode()),
                ("source.partition", str(number).encode()),
                ("source.offset", str(offset).encode()),
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
                f"({'; '.join(problems[:3]) or 'flush timed out'}): the batch is not committed"
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
