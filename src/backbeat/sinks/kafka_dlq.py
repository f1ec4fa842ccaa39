"""The Kafka dead-letter sink: each batch's bad Kafka records to ``<topic>.dlq``, at least once.

A Kafka topic cannot take a record back, so this sink does not claim exactly once: after the
store commits a batch, :meth:`DeadLetterSink.write` sends its dead letters (those read from
Kafka partitions) with a ``batch.id`` header and waits for the broker. Its mark, committed
with each batch, is the last batch it finished; on start it re-sends, from the store, the
dead letters of every committed batch after that mark (a crash between a commit and its send,
or a send the broker refused). A record may therefore arrive twice, never not at all; the
``batch.id`` and ``source.*`` headers identify repeats. A clean stop saves the mark of the
last batch sent, so a restart repeats nothing.

Next: ``backbeat.transport.kafka.dead_letters`` (the producer), ``base.py`` (the contract).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pyarrow as pa

from backbeat.errors import ConfigError
from backbeat.events.schema import Topic
from backbeat.sinks.base import Guarantee, Mark, ResultSink, SinkBatch, SinkSpec
from backbeat.sinks.queries import DeadLetterRecords, Reader
from backbeat.transport.kafka.dead_letters import DeadLetterProducer
from backbeat.transport.kafka.settings import KafkaSettings

log = logging.getLogger(__name__)


class DeadLetterSink(ResultSink):
    """Dead letters of Kafka records to ``<source topic>.dlq``, at least once."""

    name = "kafka-dlq"
    guarantee = Guarantee.AT_LEAST_ONCE

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._producer = DeadLetterProducer(settings)
        self._through: int | None = None  # the last batch whose dead letters are all sent

    @property
    def key(self) -> str:
        return f"kafka-dlq:{self._settings.bootstrap_servers}"

    @property
    def published(self) -> int:
        """Dead letters the broker acknowledged so far."""
        return self._producer.published

    @classmethod
    def from_spec(cls, spec: SinkSpec) -> DeadLetterSink:
        if spec.kafka is None:
            raise ConfigError("the kafka-dlq sink needs a Kafka cluster: --bootstrap-servers")
        if spec.options:
            raise ConfigError(
                f"the kafka-dlq sink takes no options (got {', '.join(spec.options)})"
            )
        return cls(spec.kafka)

    def resume(self, batch_id: int, mark: Mark | None, reader: Reader) -> None:
        """Re-send the dead letters of committed batches after the mark."""
        through = batch_id if mark is None else int(mark["through"])
        if through < batch_id:
            records = reader.run(DeadLetterRecords(after=through, upto=batch_id))
            sent = self._producer.publish(records, records.column("batch_id").to_pylist())
            log.info("re-sent %d dead letters of batches %d..%d", sent, through + 1, batch_id)
        self._through = batch_id

    def begin(self, batch: SinkBatch) -> Mark | None:
        return None if self._through is None else {"through": self._through}

    def write(
        self,
        batch_id: int,
        partials: Mapping[str, pa.Table],
        events: Mapping[Topic, pa.Table],
        dead_letters: pa.Table,
    ) -> None:
        """Send the batch's dead letters and wait for the broker.

        Raises:
            TransientError: the broker did not take them all (re-sent at the next start).
        """
        self._producer.publish(dead_letters, [batch_id] * dead_letters.num_rows)
        self._through = batch_id

    def settle(self) -> Mark | None:
        return None if self._through is None else {"through": self._through}

    def close(self) -> None:
        self._producer.close()
