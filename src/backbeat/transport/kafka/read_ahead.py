"""Read ahead: the Kafka consumer's next batches are fetched and prepared while the engine works.

``consume()`` spends most of its time waiting for fetch responses and building messages,
which can overlap the engine's work on the batch before. :class:`ReadAhead` runs a
pipeline of two background threads: one consumes, the other prepares each result (the source
groups it per partition and decodes it: ``fetched.py``, the JSON parse being the heaviest
step of a batch); results come out in order, at most two ahead of the engine. The source
still decides what each record means when the engine polls, under the partition state the
engine has reached (positions, ends), so what a batch means does not change.

Only for sources with fixed partitions (``assign()``): a consumer group serves rebalances
inside ``consume()``, and those must run on the engine's thread between batches. A seek
(after a refused commit) bumps a generation under the lock the thread holds while it
consumes, so every message fetched before the seek is thrown away.

Next: ``source.py`` (the caller), ``fetched.py`` (the preparation).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

log = logging.getLogger(__name__)
T = TypeVar("T")
X = TypeVar("X")

_WAIT_S = 0.1


class ReadAhead(Generic[T]):
    """A background thread that keeps one ``consume()`` result ready, prepared."""

    def __init__(
        self, consumer: Consumer, timeout_s: float, prepare: Callable[[list[Message]], T]
    ) -> None:
        """``prepare`` turns each ``consume()`` result into what :meth:`take` returns, on a
        second thread while the first one consumes the next (it must not use the consumer)."""
        self._consumer = consumer
        self._timeout = timeout_s
        self._prepare = prepare
        self._lock = threading.Lock()  # held around each consume(): a seek waits for it
        # Two stages: consume, then prepare; at most two results not yet taken (memory).
        self._slots = threading.Semaphore(2)
        self._fetched: queue.Queue[tuple[int, list[Message] | BaseException]] = queue.Queue(1)
        self._ready: queue.Queue[tuple[int, T | BaseException]] = queue.Queue(1)
        self._generation = 0
        self._want = 1
        self._progress: list[TopicPartition] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backbeat-kafka-read", daemon=True)
        self._preparing = threading.Thread(
            target=self._prepare_all, name="backbeat-kafka-prepare", daemon=True
        )

    def take(self, max_messages: int) -> T:
        """The next prepared ``consume()`` result (it may hold up to the size asked the time
        before).

        Raises:
            KafkaException: the consumer failed.
            RuntimeError: the reading thread is gone (it already handed over a failure).
        """
        self._want = max_messages
        if self._stop.is_set():
            return self._prepare([])
        if self._thread.ident is None:  # started by the first read, not by the constructor
            self._thread.start()
            self._preparing.start()
        while True:
            try:
                generation, item = self._ready.get(timeout=_WAIT_S)
                self._slots.release()
            except queue.Empty:
                if not self._preparing.is_alive():
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
    def paused(self, drop: bool = True) -> Iterator[None]:
        """Use the consumer inside (e.g. seek): everything fetched before is dropped
        (``drop=False``: kept, e.g. when partitions are only added)."""
        with self._lock:
            yield
            if drop:
                self._generation += 1  # the thread reads it only while holding the lock

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=_WAIT_S):
                continue
            try:
                with self._lock:
                    generation = self._generation
                    self._commit_progress()
                    item: list[Message] | BaseException = self._consumer.consume(
                        self._want, self._timeout
                    )
            except BaseException as exc:  # handed to the engine's thread
                item = exc
            if not self._put(self._fetched, (generation, item)) or isinstance(item, BaseException):
                return

    def _prepare_all(self) -> None:
        while not self._stop.is_set():
            try:
                generation, fetched = self._fetched.get(timeout=_WAIT_S)
            except queue.Empty:
                continue
            try:
                item = fetched if isinstance(fetched, BaseException) else self._prepare(fetched)
            except BaseException as exc:  # handed to the engine's thread
                item = exc
            if not self._put(self._ready, (generation, item)) or isinstance(item, BaseException):
                return

    def _put(self, target: queue.Queue[tuple[int, X]], item: tuple[int, X]) -> bool:
        """Put ``item`` once there is room; False if stopped first."""
        while not self._stop.is_set():
            try:
                target.put(item, timeout=_WAIT_S)
                return True
            except queue.Full:
                continue
        return False

    def _commit_progress(self) -> None:
        offsets, self._progress = self._progress, []
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            log.debug("lag commit skipped: %s", exc.args[0].str())

    def close(self) -> None:
        """Stop the threads after the calls in flight (the consumer stays open)."""
        self._stop.set()
        for thread in (self._thread, self._preparing):
            if thread.is_alive():
                thread.join()
