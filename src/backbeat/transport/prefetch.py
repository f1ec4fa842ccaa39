"""Read ahead on the second core: a source wrapper that polls in a background worker.

While the engine decodes, aggregates and commits batch *n*, the wrapped source already
produces batch *n+1*. Two workers:

- ``"thread"``: a background thread; enough when the source waits on I/O or releases the GIL.
- ``"process"``: a forked child process that ships slices back as Arrow IPC files in shared
  memory (``/dev/shm`` when it has room, else the temp folder), which this process maps
  without copying; needed for CPU-bound Python sources such as the simulator, which would
  otherwise share the GIL. The child joins each slice's chunks (one per simulated step) before
  writing it, on its own core, so the engine's kernels then run once per column rather than
  once per step. Each file is unlinked as soon as it is mapped; the folder goes at
  :meth:`Prefetching.close`, or, when this process dies (kill -9 included), with the child,
  or at the next start.

Slices still come out in order with their positions, so the exactly-once contract is
untouched: read-ahead that was never committed is simply produced again after a restart.
:func:`read_ahead` does the same for any iterator on a thread (``backbeat produce`` simulates
and encodes the next chunk while the current one is queued to Kafka).

Next: ``base.py`` (the contract), ``inprocess.py`` (the usual wrapped source).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Literal, TypeVar, cast

import numpy as np
import pyarrow as pa

from backbeat.errors import SourceError
from backbeat.transport.base import ArrowSlice, Slice, Source

Worker = Literal["thread", "process"]
T = TypeVar("T")
SHARED_MEMORY = Path("/dev/shm")
SHARED_MEMORY_MIN_FREE = 2 << 30  # enough for a few batches in flight


def _exchange_folder() -> Path:
    """A private folder for the slices in flight, named after this process: in shared memory
    when it has room. Folders left by processes that no longer exist are removed first."""
    base = Path(tempfile.gettempdir())
    with contextlib.suppress(OSError):
        stat = os.statvfs(SHARED_MEMORY)
        if stat.f_bavail * stat.f_frsize >= SHARED_MEMORY_MIN_FREE:
            base = SHARED_MEMORY
    for stale in base.glob("backbeat-prefetch-*"):
        owner = stale.name.split("-")[2]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"backbeat-prefetch-{os.getpid()}-", dir=base))


def read_ahead(items: Iterable[T], depth: int = 2) -> Generator[T, None, None]:
    """Yield ``items`` in order while a background thread already makes the next ``depth``.

    Worth it when making an item mostly releases the GIL (NumPy, Arrow, DuckDB). An exception
    in the thread is raised here, in order; closing the iterator (or leaving the loop) stops
    the thread after the item it is making (and waits for it).
    """
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def make() -> None:
        try:
            for item in items:
                if not _put(ready, item, stop):
                    return
        except BaseException as exc:  # handed to the caller's thread
            _put(ready, _Failed(exc), stop)
            return
        _put(ready, _DONE, stop)

    worker = threading.Thread(target=make, name="backbeat-read-ahead", daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, _Failed):
                raise item.error
            yield cast(T, item)
    finally:
        stop.set()
        # Wait for the item in the making: a thread still inside native code (DuckDB) when
        # the interpreter exits aborts the process.
        worker.join()


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


def _put(target: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Put ``item`` once there is room; False if ``stop`` was set first."""
    while not stop.is_set():
        try:
            target.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class Prefetching(Source):
    """Wraps a source; keeps up to ``depth`` polls of ``batch_events`` ready."""

    def __init__(
        self, inner: Source, batch_events: int, depth: int = 2, worker: Worker = "thread"
    ) -> None:
        self._inner = inner
        self._batch = batch_events
        self._depth = depth
        self._worker = worker
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._child: mp.process.BaseProcess | None = None
        self._exhausted = False
        self._static: Mapping[str, str] | None = None
        self._folder: Path | None = None

    def open(self, positions: Mapping[str, int]) -> None:
        self._static = self._inner.partitions()
        target: _Producer
        if self._worker == "process":
            ctx = mp.get_context("fork")
            ours, theirs = ctx.Pipe(duplex=True)
            self._folder = _exchange_folder()
            self._child = ctx.Process(
                target=_child_main,
                args=(self._inner, dict(positions), self._batch, theirs, self._folder),
                name="backbeat-prefetch", daemon=True,
            )  # fmt: skip
            self._child.start()
            theirs.close()
            target = _ReceiveFromChild(ours, self._depth)
        else:
            self._inner.open(positions)
            target = _PollInThread(self._inner, self._batch)
        self._thread = threading.Thread(
            target=self._run, args=(target,), name="backbeat-prefetch", daemon=True
        )
        self._thread.start()

    def _run(self, target: _Producer) -> None:
        try:
            while not self._stop.is_set():
                slices = target.next()
                if slices is None:
                    break
                if slices:
                    _put(self._queue, slices, self._stop)
        except BaseException as exc:  # handed to the engine thread on its next poll
            _put(self._queue, exc, self._stop)
        _put(self._queue, _DONE, self._stop)

    @property
    def exhausted(self) -> bool:
        return self._exhausted

    def partitions(self) -> Mapping[str, str] | None:
        if self._exhausted:
            return {}
        if self._worker == "thread":  # the wrapped source lives here: ask it
            return self._inner.partitions()
        return self._static  # the child's copy moves on; its set of partitions is fixed

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
        if self._child is not None:
            self._child.terminate()
            self._child.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
        self._inner.close()


_DONE = object()


class _Producer:
    def next(self) -> list[Slice] | None:
        """The next slices ([] if none yet), or None when the source is exhausted."""
        raise NotImplementedError


class _PollInThread(_Producer):
    def __init__(self, inner: Source, batch: int) -> None:
        self._inner, self._batch = inner, batch

    def next(self) -> list[Slice] | None:
        slices = self._inner.poll(self._batch)
        if not slices and self._inner.exhausted:
            return None
        if not slices:
            time.sleep(0.01)
        return slices


@dataclass(frozen=True, slots=True)
class _Header:
    topic: str
    partition: str
    next_position: int


class _ReceiveFromChild(_Producer):
    """Parent side: asks the child for a poll, maps the Arrow IPC files it wrote."""

    def __init__(self, conn: Connection, depth: int) -> None:
        self._conn = conn
        for _ in range(depth):  # keep the child busy `depth` polls ahead
            conn.send("poll")

    def next(self) -> list[Slice] | None:
        message = self._conn.recv()
        if message == "done":
            return None
        if isinstance(message, str):
            raise SourceError(f"the read-ahead worker failed: {message}")
        with contextlib.suppress(BrokenPipeError):  # the child already finished: "done" waits
            self._conn.send("poll")
        written: list[tuple[_Header, str]] = message
        slices: list[Slice] = []
        for header, path in written:
            with pa.memory_map(path) as mapped:  # the table keeps the mapping alive
                table = pa.ipc.open_file(mapped).read_all()
            os.unlink(path)
            slices.append(
                ArrowSlice(
                    topic=header.topic,
                    partition=header.partition,
                    table=table,
                    offsets=np.arange(table.num_rows, dtype=np.int64),
                    next_position=header.next_position,
                )
            )
        return slices


def _child_main(
    inner: Source, positions: dict[str, int], batch: int, conn: Connection, folder: Path
) -> None:
    """Child side: poll the source on request, write its slices into ``folder``, say where."""
    try:
        inner.open(positions)
        while conn.recv() == "poll":
            while True:
                slices = inner.poll(batch)
                if slices or inner.exhausted:
                    break
            if not slices:
                conn.send("done")
                return
            written = []
            for piece in slices:
                assert isinstance(piece, ArrowSlice), "process read-ahead needs typed slices"
                path = str(folder / f"{uuid.uuid4().hex}.arrow")
                with pa.OSFile(path, "wb") as out, pa.ipc.new_file(out, piece.table.schema) as w:
                    w.write_table(piece.table.combine_chunks())
                written.append((_Header(piece.topic, piece.partition, piece.next_position), path))
            conn.send(written)
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        shutil.rmtree(folder, ignore_errors=True)  # the parent is gone: nobody reads them
    except Exception as exc:  # reported to the parent as one line
        conn.send(f"{type(exc).__name__}: {exc}")
