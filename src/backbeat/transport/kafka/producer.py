"""Simulator -> Kafka: one record per event, keyed so each user's events stay ordered.

A batch of simulated tables is encoded per topic with the contract's codec
(:func:`~backbeat.events.codec.encode_table`, the same bytes as a JSONL line) and split into
records. The key is ``u<userId>`` for known users and ``s<sessionId>`` for guests (a guest has
no user id, and a session is the device's stable identity), so a user's (or device's) events
land in one partition in order. ``eventId`` rides in a header. The producer is idempotent with
``acks=all``, lz4 and large batches; every delivery failure is counted with its reason and
reported by :meth:`EventProducer.close`, never dropped silently. A full local queue waits for
deliveries instead of failing. A broker that stops answering is logged (``health.py``) while
the records wait: librdkafka retries them, idempotently, for ``message.timeout.ms`` (5 min).

Next: ``dead_letters.py`` (the other producer), ``backbeat.wiring.produce_run`` (the caller).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
from confluent_kafka import KafkaError, Message, Producer

from backbeat.errors import TransientError
from backbeat.events.codec import encode_table
from backbeat.events.schema import Topic
from backbeat.transport.kafka.health import BrokerWatch
from backbeat.transport.kafka.settings import KafkaSettings

log = logging.getLogger(__name__)
Headers = list[tuple[str, str | bytes | None]]

PRODUCER_DEFAULTS = {
    "enable.idempotence": "true",
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": "50",
    "batch.size": "1000000",
    "queue.buffering.max.messages": "1000000",
    "queue.buffering.max.kbytes": "1048576",
}
"""Throughput settings (see PERFORMANCE.md); ``KafkaSettings.extra`` overrides any of them."""


@dataclass(slots=True)
class DeliveryReport:
    """What the broker acknowledged: delivered records and failures by reason."""

    produced: int = 0
    delivered: int = 0
    failed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def pending(self) -> int:
        return self.produced - self.delivered - self.failed


def producer_config(settings: KafkaSettings) -> dict[str, str]:
    """librdkafka settings of a throughput producer (user's ``extra`` keys win)."""
    return {**PRODUCER_DEFAULTS, **settings.to_librdkafka()}


class EventProducer:
    """Produces simulated event tables to ``settings.topic(<topic>)``."""

    def __init__(self, settings: KafkaSettings, topics: set[Topic] | None = None) -> None:
        """Only ``topics`` are produced (default: all four)."""
        self._settings = settings
        self._topics = topics or set(Topic)
        self.watch = BrokerWatch("producer", settings.bootstrap_servers)
        self._producer = Producer({**self.watch.config(), **producer_config(settings)})
        self.report = DeliveryReport()

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.report.delivered += 1
            return
        self.report.failed += 1
        self.report.reasons[err.str()] += 1
        if self.report.reasons[err.str()] == 1:
            log.error("delivery to %s failed: %s", msg.topic(), err.str())

    def send(self, tables: dict[Topic, pa.Table]) -> int:
        """Queue every event of ``tables`` (one per topic); returns how many were queued."""
        queued = 0
        for topic, table in tables.items():
            if topic not in self._topics or table.num_rows == 0:
                continue
            values = encode_table(topic, table).split(b"\n")[:-1]
            users = table.column("userId").to_pylist()
            sessions = table.column("sessionId").to_pylist()
            event_ids = table.column("eventId").to_pylist()
            name = self._settings.topic(topic.value)
            for value, user, session, event_id in zip(
                values, users, sessions, event_ids, strict=True
            ):
                key = f"u{user}" if user is not None else f"s{session}"
                self._produce(name, value, key, [("eventId", event_id.encode())])
            queued += len(values)
        self._producer.poll(0)
        return queued

    def _produce(self, topic: str, value: bytes, key: str, headers: Headers) -> None:
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=self._on_delivery
                )
                self.report.produced += 1
                return
            except BufferError:  # local queue full: wait for deliveries, then retry
                self._producer.poll(0.1)

    def poll(self) -> None:
        """Serve delivery callbacks that are ready."""
        self._producer.poll(0)

    def close(self, timeout: float = 30.0) -> DeliveryReport:
        """Flush: wait up to ``timeout`` s for every queued record; pending ones count as failed.

        Raises:
            TransientError: records could not be delivered before the timeout.
        """
        left = self._producer.flush(timeout)
        if left:
            self.report.failed += left
            self.report.reasons["not delivered before the flush timeout"] += left
            raise TransientError(
                f"{left:,} records were not delivered within {timeout:.0f}s to "
                f"{self._settings.bootstrap_servers!r}"
            )
        return self.report
