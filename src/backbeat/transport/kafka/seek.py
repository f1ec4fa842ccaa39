"""Where a partition starts when the engine starts it from a time (``stream --from <time>``).

:func:`offsets_at_time` asks the broker's time index for the first offset whose timestamp is
at or after the time (Kafka's ``ListOffsets`` by timestamp, confluent-kafka's
``offsets_for_times``). A partition with no such record yet answers -1; it then starts at the
log end read *before* a second look-up, so a record appended between the two calls is not
skipped. The index is a shortcut only: the source still checks each record's timestamp until
the first one at or after the time (a broker without a time index, like tansu's memory
storage, answers with the log start, and the check skips the older records).

Next: ``source.py`` (who calls this and checks the timestamps).
"""

from __future__ import annotations

from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaException, TopicPartition

from backbeat.errors import SourceError

Key = tuple[str, int]


def offsets_at_time(
    consumer: Consumer, parts: Sequence[Key], at_ms: int, timeout_s: float
) -> dict[Key, int]:
    """The offset to start each of ``parts`` at for records stamped at or after ``at_ms``.

    Raises:
        SourceError: the broker did not answer or refused a look-up.
    """
    found = _lookup(consumer, parts, at_ms, timeout_s)
    missing = [key for key, offset in found.items() if offset < 0]
    if missing:
        ends = {key: _log_end(consumer, key, timeout_s) for key in missing}
        again = _lookup(consumer, missing, at_ms, timeout_s)
        found.update({key: offset if offset >= 0 else ends[key] for key, offset in again.items()})
    return found


def _lookup(
    consumer: Consumer, parts: Sequence[Key], at_ms: int, timeout_s: float
) -> dict[Key, int]:
    if not parts:
        return {}
    query = [TopicPartition(topic, number, at_ms) for topic, number in parts]
    try:
        answer = consumer.offsets_for_times(query, timeout=timeout_s)
    except KafkaException as exc:
        raise SourceError(f"cannot look up offsets by time: {exc.args[0].str()}") from None
    failed = [f"{p.topic}:{p.partition}: {p.error.str()}" for p in answer if p.error]
    if failed:
        raise SourceError(f"cannot look up offsets by time: {'; '.join(failed[:3])}")
    return {(p.topic, p.partition): p.offset for p in answer}


def _log_end(consumer: Consumer, key: Key, timeout_s: float) -> int:
    try:
        _, high = consumer.get_watermark_offsets(
            TopicPartition(*key), timeout=timeout_s, cached=False
        )
    except KafkaException as exc:
        raise SourceError(
            f"cannot read the end of {key[0]}:{key[1]}: {exc.args[0].str()}"
        ) from None
    return int(high)
