"""Knowing when a batch was committed: the version the API caches by and SSE clients wait on.

The engine (in this process) or a watcher thread (a store written by another process)
calls :meth:`CommitHub.publish` with each new batch id. Readers take :attr:`version` as the
key of anything they cache; the live stream awaits :meth:`wait_newer` and never polls.

Next: ``routes/live.py`` (the live stream that waits on it), ``backbeat.sinks.queries``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from backbeat.errors import BackbeatError
from backbeat.sinks.queries import LatestBatch, Reader, name_of

log = logging.getLogger(__name__)


class CommitHub:
    """The latest committed batch id, and the event loops waiting for a newer one."""

    def __init__(self, version: int = 0) -> None:
        self._version = version
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # for threads (wait_newer_blocking)
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    @property
    def version(self) -> int:
        return self._version

    def publish(self, batch_id: int) -> None:
        """Announce that batches up to ``batch_id`` are committed (any thread)."""
        with self._lock:
            if batch_id <= self._version:
                return
            self._version = batch_id
            waiters = list(self._waiters)
            self._changed.notify_all()
        for loop, event in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    async def wait_newer(self, seen: int, timeout: float) -> int:
        """The version once it is newer than ``seen``, or the current one after ``timeout`` s."""
        if self._version > seen:
            return self._version
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.add(waiter)
        try:
            if self._version <= seen:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), timeout)
            return self._version
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def wait_newer_blocking(self, seen: int, timeout: float) -> int:
        """:meth:`wait_newer` for a thread outside any event loop."""
        with self._changed:
            self._changed.wait_for(lambda: self._version > seen, timeout)
            return self._version


def latest_batch(reader: Reader) -> int:
    """The id of the store's last committed batch (0: none, or a store that does not say)."""
    if name_of(LatestBatch) not in reader.answers():
        return 0
    return int(reader.one(LatestBatch())["b"])


class StoreWatcher:
    """Publishes the batches another process commits, by checking the store periodically."""

    def __init__(self, reader: Reader, hub: CommitHub, every_s: float = 0.25) -> None:
        self._reader = reader
        self._hub = hub
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self._hub.publish(latest_batch(self._reader))
            except BackbeatError as exc:  # a busy store: try again at the next tick
                log.debug("store watcher: %s", exc)
