"""Read ahead on a second core: a source wrapper that polls in a background thread.

While the engine decodes, aggregates and commits batch *n*, the wrapped source already
produces batch *n+1* (NumPy, Arrow and DuckDB release the GIL, so the two overlap on two
cores). Slices still come out in order with their positions, so the exactly-once contract is
untouched: read-ahead that was never committed is simply read again after a restart.

Next: ``base.py`` (the contract), ``inprocess.py`` (the usual wrapped source).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping

from backbeat.transport.base import Slice, Source

_DONE = object()


class Prefetching(Source):
    """Wraps a source; keeps up to ``depth`` polls of ``batch_events`` ready."""

    def __init__(self, inner: Source, batch_events: int, depth: int = 2) -> None:
        self._inner = inner
        self._batch = batch_events
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._exhausted = False

    def open(self, positions: Mapping[str, int]) -> None:
        self._inner.open(positions)
        self._thread = threading.Thread(target=self._run, name="backbeat-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                slices = self._inner.poll(self._batch)
                if slices:
                    self._put(slices)
                elif self._inner.exhausted:
                    break
                else:
                    self._stop.wait(0.01)
        except BaseException as exc:  # handed to the engine thread on its next poll
            self._put(exc)
        self._put(_DONE)

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    @property
    def exhausted(self) -> bool:
        return self._exhausted

    def poll(self, max_events: int) -> list[Slice]:
        if self._exhausted:
            return []
        try:
            item = self._queue.get(timeout=0.05)
        except queue.Empty:
            return []
        if item is _DONE:
            self._exhausted = True
            return []
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, list)
        return item

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._inner.close()
