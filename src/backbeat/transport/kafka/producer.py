"""Simulator -> Kafka: one record per event, keyed so each user's events stay ordered.

A chunk of simulated tables is encoded per topic with the contract's codec
(:func:`~backbeat.events.codec.encode_array`: one record each, the bytes of a JSONL line, all
in one Arrow array) by :meth:`EventProducer.encode` (safe on a read-ahead thread), then queued
by :meth:`EventProducer.queue` through confluent-kafka's public ``Producer``: one
``Producer.produce`` call per record, made by ``produce_loop.produce_each`` (a C loop,
``_c/produce.c``, or its Python twin) straight from the Arrow buffers of values, keys and
``eventId`` headers, so the encode thread never makes a Python object per record.
The key is ``u<userId>`` for known users and ``s<sessionId>`` for guests (a guest has no user
id, and a session is the device's stable identity), so a user's (or device's) events land in
one partition in order. ``eventId`` rides in a header. The producer is idempotent with
``acks=all``, lz4 and large batches; every delivery failure is counted with its reason and
reported by :meth:`EventProducer.close`, never dropped silently (only failures come back as
callbacks: delivered = produced - failed once flushed). A full local queue waits for
deliveries instead of failing. A broker that stops answering is logged (``health.py``) while
the records wait: librdkafka retries them, idempotently, for ``message.timeout.ms`` (5 min).

Next: ``produce_loop.py`` (the per-record loop), ``dead_letters.py`` (the other producer),
``backbeat.wiring.produce_to_kafka`` (the caller).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import KafkaError, Message, Producer

from backbeat.errors import TransientError
from backbeat.events.codec import encode_array, one_chunk, prefixed_ints
from backbeat.events.schema import Topic
from backbeat.transport.kafka import produce_loop
from backbeat.transport.kafka.health import BrokerWatch
from backbeat.transport.kafka.produce_loop import column
from backbeat.transport.kafka.settings import KafkaSettings

log = logging.getLogger(__name__)
SLICE = 8192
"""Records per ``produce_each`` call: Ctrl-C and the encode thread get their turn between."""
Records = tuple[str, pa.Array, pa.Array, pa.Array]
"""Records of one cluster topic: the topic, then values, keys and ``eventId`` headers (Arrow
binary or string arrays without nulls, equally long)."""
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


def records(topic: Topic, table: pa.Table) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Values (the codec's JSON), keys and ``eventId`` headers of a table's events, as Arrow
    arrays (no Python object per record).

    Runs on the encode thread beside the produce loop, in a few C calls that let go of the
    GIL: one to join the table's chunks, one to encode, one for the keys.
    """
    table = table.combine_chunks()
    values = encode_array(topic, table)
    keys = prefixed_ints([("u", table.column("userId")), ("s", table.column("sessionId"))])
    event_ids = one_chunk(table.column("eventId"))
    if event_ids.null_count:  # not in the contract; an empty header rather than garbage
        event_ids = pc.fill_null(event_ids, "")
    return values, keys, event_ids


class EventProducer:
    """Produces simulated event tables to ``settings.topic(<topic>)``."""

    def __init__(self, settings: KafkaSettings, topics: set[Topic] | None = None) -> None:
        """Only ``topics`` are produced (default: all four)."""
        self._settings = settings
        self._topics = topics or set(Topic)
        self.watch = BrokerWatch("producer", settings.bootstrap_servers)
        self.report = DeliveryReport()
        # confluent-kafka serves every delivery report inside poll()/flush(), on the calling
        # thread, but calls Python only for failures: delivered = produced - failed - queued.
        self._producer = Producer(
            {
                **self.watch.config(),
                **producer_config(settings),
                "on_delivery": self._on_delivery,
                "delivery.report.only.error": True,
            }
        )

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            return
        reason = err.str()
        if not self.report.reasons[reason]:
            log.error("delivery to %s failed: %s", msg.topic(), reason)
        self.report.failed += 1
        self.report.reasons[reason] += 1

    def encode(self, tables: dict[Topic, pa.Table]) -> list[Records]:
        """The records of ``tables`` (the chosen topics), ready for :meth:`queue`. Touches no
        producer state, so another thread may encode the next chunk meanwhile."""
        return [
            (self._settings.topic(topic.value), *records(topic, table))
            for topic, table in tables.items()
            if topic in self._topics and table.num_rows
        ]

    def queue(self, batches: list[Records]) -> int:
        """Queue encoded records to the broker; returns how many were queued.

        Raises:
            ValueError: a batch's values, keys and eventIds differ in length, or a row lies
                outside its buffers (nothing of that slice is queued).
            KafkaException: librdkafka refused a record (the ones before it are queued and
                counted).
        """
        produce = self._producer.produce
        before = self.report.produced
        for name, values, keys, event_ids in batches:
            if not len(values) == len(keys) == len(event_ids):
                raise ValueError(f"{name}: values, keys and eventIds differ in length")
            specs = column(values), column(keys), column(event_ids)
            done = 0
            while done < len(values):
                stop = min(done + SLICE, len(values))
                at, error = produce_loop.produce_each(
                    produce, name, specs[0], specs[1], "eventId", specs[2], done, stop
                )
                self.report.produced += at - done
                done = at
                if isinstance(error, BufferError):  # local queue full: wait for deliveries
                    self._producer.poll(0.1)
                elif error is not None:
                    raise error
        self.poll()
        return self.report.produced - before

    def poll(self) -> None:
        """Serve delivery callbacks that are ready; update ``report.delivered``."""
        self._producer.poll(0)
        self.report.delivered = max(
            0, self.report.produced - self.report.failed - len(self._producer)
        )

    def close(self, timeout: float = 30.0) -> DeliveryReport:
        """Flush: wait up to ``timeout`` s for every queued record; pending ones count as failed.

        Raises:
            TransientError: records could not be delivered before the timeout.
        """
        left = self._producer.flush(timeout)
        self.report.delivered = self.report.produced - self.report.failed - left
        if left:
            self.report.failed += left
            self.report.reasons["not delivered before the flush timeout"] += left
            raise TransientError(
                f"{left:,} records were not delivered within {timeout:.0f}s to "
                f"{self._settings.bootstrap_servers!r}"
            )
        return self.report
