"""One ``consume()`` ahead: the Kafka consumer's next batch is fetched while the engine works.

``consume()`` spends most of its time waiting for fetch responses and building messages
(without the GIL), which can overlap the engine's decode, aggregate and commit of the batch
before. :class:`ReadAhead` runs those calls on a background thread and hands over whole
message lists, in order; the source groups them per partition when the engine polls, under
the partition state the engine has reached (positions, ends), so what a batch means does not
change.

Only for sources with fixed partitions (``assign()``): a consumer group serves rebalances
inside ``consume()``, and those must run on the engine's thread between batches. A seek
(after a refused commit) bumps a generation under the lock the thread holds while it
consumes, so every message fetched before the seek is thrown away.

Next: ``source.py`` (the caller).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

log = logging.getLogger(__name__)

_WAIT_S = 0.1


class ReadAhead:
    """A background thread that keeps one ``consume()`` result ready."""

    def __init__(self, consumer: Consumer, timeout_s: float) -> None:
        self._consumer = consumer
        self._timeout = timeout_s
        self._lock = threading.Lock()  # held around each consume(): a seek waits for it
        self._ready: queue.Queue[tuple[int, list[Message] | BaseException]] = queue.Queue(1)
        self._generation = 0
        self._want = 1
        self._progress: list[TopicPartition] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backbeat-kafka-read", daemon=True)

    def take(self, max_messages: int) -> list[Message]:
        """The next ``consume()`` result (it may hold up to the size asked the time before).

        Raises:
            KafkaException: the consumer failed.
            RuntimeError: the reading thread is gone (it already handed over a failure).
        """
        self._want = max_messages
        if self._stop.is_set():
            return []
        if self._thread.ident is None:  # started by the first read, not by the constructor
            self._thread.start()
        while True:
            try:
                generation, item = self._ready.get(timeout=_WAIT_S)
            except queue.Empty:
                if not self._thread.is_alive():
                    raise RuntimeError("the Kafka read-ahead thread stopped") from None
                continue
            if isinstance(item, BaseException):
                raise item
            if generation == self._generation:
                return item

    def commit_later(self, offsets: list[TopicPartition]) -> None:
        """Commit these offsets to the group (lag monitoring) before the next ``consume()``."""
        self._progress = offsets

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Use the consumer inside (e.g. seek): everything fetched before is dropped."""
        with self._lock:
            yield
            self._generation += 1  # the thread reads it only while holding the lock

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._lock:
                    generation = self._generation
                    self._commit_progress()
                    item: list[Message] | BaseException = self._consumer.consume(
                        self._want, self._timeout
                    )
            except BaseException as exc:  # handed to the engine's thread
                item = exc
            while not self._stop.is_set():
                try:
                    self._ready.put((generation, item), timeout=_WAIT_S)
                    break
                except queue.Full:
                    continue
            if isinstance(item, BaseException):
                return

    def _commit_progress(self) -> None:
        offsets, self._progress = self._progress, []
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            log.debug("lag commit skipped: %s", exc.args[0].str())

    def close(self) -> None:
        """Stop the thread after the call in flight (the consumer stays open)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
