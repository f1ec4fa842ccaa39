"""What every engine does around its batches, written once: resume the sinks from their
marks, report each commit, stop cleanly on Ctrl-C, and settle the sinks on a clean close.

Next: ``pipeline.py`` and ``spark/engine.py`` (the engines that use it).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from backbeat.engine.base import OnBatch, RunReport
from backbeat.sinks.base import BatchStats, CheckpointState, ResultSink, Store
from backbeat.transport.base import Source

log = logging.getLogger(__name__)


def resume_sinks(store: Store, sinks: Sequence[ResultSink], state: CheckpointState) -> None:
    """Let each sink finish its last write from its committed mark (a sink new to the store
    starts with the next batch, and says so)."""
    reader = store.reader()
    for sink in sinks:
        mark = state.marks.get(sink.key)
        if mark is None and state.batch_id:
            log.warning(
                "%s is new to this store: it receives the batches after batch %d",
                sink.key,
                state.batch_id,
            )
        sink.resume(state.batch_id, mark, reader)


@contextmanager
def graceful_interrupt(stop: Callable[[], None]) -> Iterator[None]:
    """Turn Ctrl-C / SIGTERM into 'finish and commit the current batch, then stop'."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        log.warning("signal %d: finishing the current batch, then stopping", signum)
        stop()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def report_commit(report: RunReport, stats: BatchStats, on_batch: OnBatch | None) -> None:
    """Count a committed batch in the run's report, log it and tell ``on_batch``."""
    report.add(stats)
    log.info(
        "committed batch %d: %d events in %.0f ms (%d this run)",
        stats.batch_id, stats.events_in, stats.seconds * 1000, report.events_in,
    )  # fmt: skip
    if on_batch is not None:
        on_batch(stats, report)


def settle_sinks(store: Store, sinks: Sequence[ResultSink], source: Source) -> None:
    """After a clean run: save the sinks' final marks (a restart repeats nothing), then close
    the source and the sinks."""
    marks = {s.key: mark for s in sinks if (mark := s.settle()) is not None}
    try:
        if marks:
            store.save_marks(marks)
    finally:
        source.close()
        for sink in sinks:
            sink.close()
