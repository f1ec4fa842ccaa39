"""Kafka as a source for the engine: batches of raw records, position = Kafka offset.

Each Kafka partition is one engine partition named ``kafka:<topic>:<partition>``; a slice's
``offsets`` are the records' Kafka offsets and ``next_position`` is the last one + 1, so the
engine commits exactly where to resume in the same store transaction as the results. On
:meth:`KafkaSource.open` the consumer is *assigned* every partition of the topics, each at its
stored position (or, when there is none, at the start or end of the log, or at the first
record stamped at or after a start time: see ``seek.py``); a topic that does not exist yet is
awaited and joins the assignment when it appears, from its first record (``awaited.py``; a
bounded run reads it as empty). In group mode (``group`` given) it
*subscribes*; every partition the group gives it is sought to the position the engine loads
from the store at that moment (:meth:`listen`), which is what lets several ``stream``
processes share the partitions, take over those of a member that died, and never count a
record twice. The group's committed offsets are written asynchronously after each batch, for
lag monitoring only: correctness never depends on them. With ``stop_at_end`` the source is
exhausted once every partition has reached the end of its log (a bounded run). Without a
group, the next ``consume()`` runs on a background thread while the engine processes the
batch before (``read_ahead.py``), and that thread also groups and decodes it
(``fetched.py``); records are still handed out on the engine's thread, in order, under the
positions it has reached.

Next: ``base.py`` (the contract), ``awaited.py``, ``dead_letters.py``,
``backbeat.engine.pipeline``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import Literal

import numpy as np
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from backbeat.errors import SourceError
from backbeat.transport.base import OnAssigned, OnRevoked, RawSlice, Slice, Source, SourceSpec
from backbeat.transport.kafka.awaited import AwaitedTopics, existing
from backbeat.transport.kafka.fetched import Fetched, Group, Key, group
from backbeat.transport.kafka.health import BrokerWatch
from backbeat.transport.kafka.read_ahead import ReadAhead
from backbeat.transport.kafka.seek import offsets_at_time
from backbeat.transport.kafka.settings import KafkaSettings

log = logging.getLogger(__name__)

StartFrom = Literal["earliest", "latest"]


def partition_name(topic: str, partition: int) -> str:
    """The engine's name for a Kafka partition."""
    return f"kafka:{topic}:{partition}"


def parse_partition_name(name: str) -> tuple[str, int] | None:
    """``(topic, partition)`` of a name made by :func:`partition_name`, else None."""
    kind, _, rest = name.partition(":")
    topic, _, number = rest.rpartition(":")
    return (topic, int(number)) if kind == "kafka" and topic and number.isdigit() else None


class KafkaSource(Source):
    """Consumes Kafka topics in batches for the engine."""

    def __init__(
        self,
        settings: KafkaSettings,
        topics: Sequence[str],
        *,
        group: str | None = None,
        start: StartFrom | datetime = "earliest",
        stop_at_end: bool = False,
        poll_timeout_s: float = 0.2,
        read_ahead: bool = True,
    ) -> None:
        """``topics`` are cluster names; ``group`` switches from assign to subscribe;
        ``start`` applies to partitions without a stored position (a time: the first record
        whose Kafka timestamp is at or after it); ``read_ahead`` fetches the next batch on a
        background thread while the engine works (without a group only: ``read_ahead.py``)."""
        if not topics:
            raise SourceError("no topics to consume: give --topics")
        self._settings = settings
        self._topics = list(topics)
        self._group = group
        self._start = OFFSET_END if start == "latest" else OFFSET_BEGINNING
        self._start_ms = int(start.timestamp() * 1000) if isinstance(start, datetime) else None
        self._seeking: set[tuple[str, int]] = set()  # started by time, first record not yet seen
        self._stop_at_end = stop_at_end
        self._timeout = poll_timeout_s
        self._stored: dict[str, int] = {}
        self._next: dict[tuple[str, int], int] = {}  # handed out so far, per partition
        self._at_end: set[tuple[str, int]] = set()
        self._committed: dict[tuple[str, int], int] = {}
        self._consumer: Consumer | None = None
        self._read_ahead = read_ahead
        self._reader: ReadAhead[Fetched] | None = None
        self._pending: list[Message] = []  # read ahead beyond what the engine asked for
        self._fixed: set[tuple[str, int]] | None = None  # the assignment, without a group
        self._awaited: AwaitedTopics | None = None  # topics of a fixed assignment not there yet
        self._on_assigned: OnAssigned | None = None
        self._on_revoked: OnRevoked | None = None
        self.watch = BrokerWatch("consumer", settings.bootstrap_servers)
        self._lags: dict[str, int] = {}

    # ------------------------------------------------------------------ lifecycle

    def spec(self) -> SourceSpec:
        return SourceSpec(
            "kafka",
            {
                "config": self._settings.to_librdkafka(),
                "topics": {t: self._settings.backbeat_topic(t) for t in self._topics},
                "from": "latest" if self._start == OFFSET_END else "earliest",
                "from_ms": self._start_ms,
                "group": self._group,
                "stop_at_end": self._stop_at_end,
            },
        )

    def listen(self, on_assigned: OnAssigned, on_revoked: OnRevoked) -> bool:
        """In group mode, ask the engine where to resume each partition the group gives."""
        if self._group is None:
            return False
        self._on_assigned, self._on_revoked = on_assigned, on_revoked
        return True

    def open(self, positions: Mapping[str, int]) -> None:
        self._stored = dict(positions)
        conf = {
            **self.watch.config(),
            **self._settings.to_librdkafka(),
            "group.id": self._group or f"{self._settings.client_id}-stream",
            "enable.auto.commit": "false",
            "enable.auto.offset.store": "false",
            "enable.partition.eof": "true",
            "auto.offset.reset": "earliest" if self._start == OFFSET_BEGINNING else "latest",
            "fetch.max.bytes": str(64 << 20),
            "max.partition.fetch.bytes": str(8 << 20),
            "queued.max.messages.kbytes": str(256 << 10),
        }
        self._consumer = Consumer(conf)
        if self._group is None:
            assignment = self._assignment(self._all_partitions())
            self._consumer.assign(assignment)
            self._fixed = {(p.topic, p.partition) for p in assignment}
            if self._read_ahead:
                name_of = self._settings.backbeat_topic
                self._reader = ReadAhead(
                    self._consumer, self._timeout, lambda batch: group(batch, name_of, decode=True)
                )
        else:
            self._consumer.subscribe(
                self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke
            )

    def _all_partitions(self) -> list[tuple[str, int]]:
        assert self._consumer is not None
        try:
            meta = self._consumer.list_topics(timeout=self._settings.request_timeout_s)
        except KafkaException as exc:
            raise SourceError(
                f"Kafka at {self._settings.bootstrap_servers!r} did not answer: {exc.args[0].str()}"
            ) from None
        found = existing(meta, self._topics)
        missing = [t for t in self._topics if t not in found]
        if missing:
            self._awaited = AwaitedTopics(missing, wait=not self._stop_at_end)
        return [(t, p) for t, parts in found.items() for p in parts]

    def _join_appeared(self) -> None:
        """Awaited topics that now exist join the assignment, from their first record (all
        of it came after the start) or the start time (``ReadAhead``: nothing read is lost)."""
        assert self._consumer is not None
        assert self._awaited is not None
        found = self._awaited.appeared(self._consumer, self._settings.request_timeout_s)
        if not self._awaited.missing:
            self._awaited = None
        if not found:
            return
        joining = self._assignment(
            [(t, p) for t, ps in found.items() for p in ps], OFFSET_BEGINNING
        )
        with self._reader.paused(drop=False) if self._reader else nullcontext():
            self._consumer.incremental_assign(joining)
        assert self._fixed is not None
        self._fixed |= {(p.topic, p.partition) for p in joining}

    def _assignment(
        self, parts: Sequence[tuple[str, int]], start: int | None = None
    ) -> list[TopicPartition]:
        """Each partition at the position handed out last, else stored, else ``start``
        (default: the source's start or end)."""
        out = []
        for topic, number in parts:
            stored = self._stored.get(partition_name(topic, number))
            offset = self._next.get((topic, number), stored if stored is not None else -1)
            if offset < 0:
                offset = self._start if start is None else start
            else:
                self._next[(topic, number)] = offset
            self._at_end.discard((topic, number))
            out.append(TopicPartition(topic, number, offset))
        return self._at_start_time(out) if self._start_ms is not None else out

    def _at_start_time(self, parts: list[TopicPartition]) -> list[TopicPartition]:
        """Partitions without a position move to the first offset at or after the start time."""
        assert self._consumer is not None
        assert self._start_ms is not None
        fresh = [p for p in parts if p.offset == self._start]
        found = offsets_at_time(
            self._consumer,
            [(p.topic, p.partition) for p in fresh],
            self._start_ms,
            self._settings.request_timeout_s,
        )
        for p in fresh:
            p.offset = found[(p.topic, p.partition)]
            self._seeking.add((p.topic, p.partition))
        return parts

    def _before_start(self, key: tuple[str, int], msg: Message) -> bool:
        """True for a record stamped before the start time in a partition still seeking it."""
        if key not in self._seeking:
            return False
        assert self._start_ms is not None
        if msg.timestamp()[1] < self._start_ms:
            return True
        self._seeking.discard(key)
        return False

    def _on_assign(self, consumer: Consumer, parts: list[TopicPartition]) -> None:
        keys = [(p.topic, p.partition) for p in parts]
        if self._on_assigned is not None:
            # The store is the truth: another process may have moved these partitions on.
            self._stored = dict(self._on_assigned([partition_name(*k) for k in keys]))
            for key in keys:
                self._next.pop(key, None)
        assignment = self._assignment(keys)
        log.info(
            "assigned %s", ", ".join(f"{p.topic}:{p.partition}@{p.offset}" for p in assignment)
        )
        consumer.assign(assignment)

    def _on_revoke(self, consumer: Consumer, parts: list[TopicPartition]) -> None:
        # The engine commits every batch before it polls again (and this runs inside poll),
        # so nothing read from these partitions is in flight.
        for p in parts:
            self._next.pop((p.topic, p.partition), None)
            self._at_end.discard((p.topic, p.partition))
            self._seeking.discard((p.topic, p.partition))
        if self._on_revoked is not None:
            self._on_revoked([partition_name(p.topic, p.partition) for p in parts])
        log.info("revoked %s", ", ".join(f"{p.topic}:{p.partition}" for p in parts))

    def seek(self, positions: Mapping[str, int | None]) -> None:
        """Rewind assigned partitions (others are skipped: they will be assigned afresh)."""
        assert self._consumer is not None
        self._pending = []
        if self._reader is None:
            self._seek(positions)
            return
        with self._reader.paused():  # what was read ahead of the seek is dropped
            self._seek(positions)

    def _seek(self, positions: Mapping[str, int | None]) -> None:
        assert self._consumer is not None
        assigned = self._owned()
        for name, position in positions.items():
            key = parse_partition_name(name)
            if key is None or key not in assigned:
                continue
            part = TopicPartition(key[0], key[1], self._start if position is None else position)
            if position is None and self._start_ms is not None:
                part = self._at_start_time([part])[0]
            self._consumer.seek(part)
            self._at_end.discard(key)
            if position is None:
                self._next.pop(key, None)
            else:
                self._next[key] = position

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._pending = []
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    # ------------------------------------------------------------------ reading

    @property
    def exhausted(self) -> bool:
        if not self._stop_at_end or self._consumer is None or self._pending:
            return False
        assigned = self._owned()  # fixed: may be empty (no topic exists: read as empty)
        return (self._fixed is not None or bool(assigned)) and assigned <= self._at_end

    def partitions(self) -> dict[str, str]:
        """Assigned partitions (minus those at the end of the log in a bounded run)."""
        if self._consumer is None:
            return {}
        return {
            partition_name(topic, number): self._settings.backbeat_topic(topic)
            for topic, number in self._owned()
            if not (self._stop_at_end and (topic, number) in self._at_end)
        }

    def poll(self, max_events: int) -> list[Slice]:
        """One ``consume()`` of up to ``max_events`` records, grouped per partition in order."""
        assert self._consumer is not None, "open() first"
        if self._awaited is not None:
            self._join_appeared()
        self._commit_progress()
        fetched = self._fetch(max(1, min(max_events, 1_000_000)))
        # A rebalance served inside consume() may have taken partitions away or sought them
        # back: records fetched before it are not ours to count.
        owned = self._owned()
        slices: list[Slice] = [
            piece
            for key, records in fetched.groups.items()
            if key in owned and (piece := self._hand_out(key, records)) is not None
        ]
        # Errors after the records: a partition's end counts only past what was handed out.
        for msg in fetched.errors:
            error = msg.error()
            assert error is not None
            self._on_error(error, msg.topic() or "", msg.partition() or 0, msg.offset())
        self._measure_lag()
        return slices

    def lag(self) -> dict[str, int]:
        """Records beyond what was handed out, per owned partition, as of the last poll."""
        return self._lags

    def _measure_lag(self) -> None:
        """Each owned partition's high watermark (as librdkafka last saw it in a fetch: no
        request) minus where the engine goes on; partitions not fetched yet are left out."""
        assert self._consumer is not None
        lags: dict[str, int] = {}
        for topic, number in self._owned():
            try:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, number), cached=True
                )
            except KafkaException:
                continue
            name = partition_name(topic, number)
            at = self._next.get((topic, number), self._stored.get(name))
            if at is None:
                at = low if self._start == OFFSET_BEGINNING else high
            if high >= 0 and at >= 0:
                lags[name] = max(0, high - at)
        self._lags = lags  # replaced whole: a reader on another thread sees one poll's view

    def _hand_out(self, key: Key, records: Group) -> RawSlice | None:
        """The partition's records not handed out yet (a decoded result only when whole)."""
        offsets, start, n = records.offsets, 0, len(records.offsets)
        floor = self._next.get(key, -1)
        if offsets[0] < floor:
            start = int(np.searchsorted(offsets, floor))
        if self._seeking:
            while start < n and self._before_start(key, records.records[start]):
                self._next[key] = int(offsets[start]) + 1
                start += 1
        if start >= n:
            return None
        last = int(offsets[-1])
        self._handed_out(key, last)
        whole = start == 0
        return RawSlice(
            topic=self._settings.backbeat_topic(key[0]),
            partition=partition_name(*key),
            payloads=records.payloads if whole else records.payloads[start:],
            offsets=offsets if whole else offsets[start:],
            next_position=last + 1,
            decoded=records.decoded if whole else None,
        )

    def _fetch(self, max_messages: int) -> Fetched:
        """The next messages: read ahead (and decoded) on the background thread, or consumed
        now (the engine decodes them)."""
        assert self._consumer is not None
        if self._pending:
            messages = self._pending
        elif self._reader is not None:
            fetched = self._reader.take(max_messages)
            if len(fetched.messages) <= max_messages:
                return fetched
            messages = fetched.messages
        else:
            messages = self._consumer.consume(max_messages, self._timeout)
        # A read-ahead may hold more than asked now: keep the rest, in order, for next time.
        messages, self._pending = messages[:max_messages], messages[max_messages:]
        return group(messages, self._settings.backbeat_topic, decode=False)

    def _owned(self) -> set[tuple[str, int]]:
        """Assigned partitions (fixed without a group: read once, not while a read is out)."""
        if self._fixed is not None:
            return self._fixed
        assert self._consumer is not None
        return {(p.topic, p.partition) for p in self._consumer.assignment()}

    def _handed_out(self, key: Key, last: int) -> None:
        """Records of partition ``key`` up to offset ``last`` were read: resume after it."""
        self._next[key] = last + 1
        self._at_end.discard(key)

    def _on_error(self, err: KafkaError, topic: str, number: int, offset: int | None) -> None:
        if err.code() == KafkaError._PARTITION_EOF:
            if offset is not None and offset >= self._next.get((topic, number), 0):
                self._at_end.add((topic, number))
            return
        if err.fatal():
            raise SourceError(f"Kafka consumer failed: {err.str()}")
        log.warning("Kafka: %s (the consumer retries)", err.str())

    def _commit_progress(self) -> None:
        """Tell the group how far the engine got (for lag monitoring only)."""
        assert self._consumer is not None
        owned = self._owned()
        changed = [
            TopicPartition(t, p, o)
            for (t, p), o in self._next.items()
            if self._committed.get((t, p)) != o and (t, p) in owned
        ]
        if not changed:
            return
        if self._reader is not None:  # the reading thread commits before its next read
            self._reader.commit_later(changed)
            self._committed.update({(tp.topic, tp.partition): tp.offset for tp in changed})
            return
        try:
            self._consumer.commit(offsets=changed, asynchronous=True)
        except KafkaException as exc:
            log.debug("lag commit skipped: %s", exc.args[0].str())
            return
        self._committed.update({(tp.topic, tp.partition): tp.offset for tp in changed})
