"""Committing batches in order: the primary store first, then every result sink.

:class:`Committer` applies one :class:`~backbeat.sinks.base.Commit` at a time: the store's
transaction (results, positions, de-dup keys, sink marks), then each sink's ``write``, then
the ``on_committed`` callback. With ``overlap`` it does so on a background thread, one batch
in flight, so the engine decodes and aggregates batch *n+1* while batch *n* is written (the
store's and DuckDB's work runs without the GIL); :meth:`Committer.wait` returns once the batch
in flight is done and raises what it raised. Order is never lost: a commit starts only after
the one before it has finished, so the store sees batches as the engine made them and a kill
at any moment leaves it before or after a batch.

Next: ``pipeline.py`` (the caller), ``backbeat.sinks.base`` (the contracts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from backbeat.engine.base import OnError
from backbeat.errors import FencedError
from backbeat.sinks.base import BatchStats, Commit, ResultSink, Store


class Committer:
    """Commits batches in order, inline or one in flight on a background thread."""

    def __init__(
        self,
        store: Store,
        sinks: Sequence[ResultSink],
        on_committed: Callable[[BatchStats], None],
        overlap: bool,
        on_error: OnError | None = None,
    ) -> None:
        """``on_error`` is told which part (the store or a sink, by name) failed a batch,
        before the error is raised."""
        self._store = store
        self._sinks = list(sinks)
        self._on_committed = on_committed
        self._on_error = on_error
        self._pool = (
            ThreadPoolExecutor(1, thread_name_prefix="backbeat-commit") if overlap else None
        )
        self._in_flight: Future[None] | None = None

    def submit(self, commit: Commit) -> None:
        """Commit ``commit`` after the batch in flight (inline without ``overlap``).

        Raises:
            BackbeatError: the batch before it failed (see :meth:`wait`); inline: this one.
        """
        self.wait()
        if self._pool is None:
            self._apply(commit)
        else:
            self._in_flight = self._pool.submit(self._apply, commit)

    def wait(self) -> None:
        """Return once no batch is in flight.

        Raises:
            FencedError: the store refused the batch in flight (nothing of it was written).
            BackbeatError: the store or a sink failed on it.
        """
        future, self._in_flight = self._in_flight, None
        if future is not None:
            future.result()

    def failed(self) -> bool:
        """Whether the batch in flight has already ended with an error (without waiting)."""
        future = self._in_flight
        return future is not None and future.done() and future.exception() is not None

    def _apply(self, commit: Commit) -> None:
        started = time.perf_counter()
        part = "store"
        try:
            batch_id = self._store.commit(commit)
            batch = commit.batch
            for sink in self._sinks:
                part = sink.name
                sink.write(batch_id, batch.partials, batch.events, batch.dead_letters)
        except FencedError:
            raise  # not a failure: another member moved a partition, the engine resumes
        except Exception as exc:
            if self._on_error is not None:
                self._on_error(part, exc)
            raise
        stats = commit.stats
        stats.batch_id = batch_id
        stats.timed("commit", started)
        self._on_committed(stats)

    def close(self) -> None:
        """Wait for the batch in flight (its errors are the caller's to collect before)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
