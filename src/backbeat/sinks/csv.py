"""The simplest result sink: one appended ``results.csv`` of plays per genre per final minute.

Columns are exactly ``window_start,window_end,genre,count`` (ISO-8601 UTC times). A window is
written once, when the listen watermark has passed its end, so a row never changes after it
is written. Exactly once across crashes: before the store commits a batch, :meth:`begin`
returns the mark of the append the batch makes (which windows, and the file's size before
it), committed with the batch; after the commit :meth:`write` truncates the file there and
writes those windows' final counts, read back from the store. On start :meth:`resume` redoes
the last committed append the same way, so a crash anywhere leaves each (window, genre) in
the file exactly once. One process must write it (no consumer groups).

Next: ``base.py`` (the contract), ``backbeat.engine.pipeline`` (who drives it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from backbeat.analytics.metrics import WINDOW_MS
from backbeat.errors import ConfigError
from backbeat.events.schema import Topic
from backbeat.sinks.base import Guarantee, Mark, ResultSink, SinkBatch, SinkSpec
from backbeat.sinks.queries import MetricRows, Reader, TimeRange

log = logging.getLogger(__name__)

HEADER: Final = b"window_start,window_end,genre,count\n"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quote(text: str) -> str:
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def render(rows: pa.Table) -> bytes:
    """CSV lines for merged ``genre_minute`` rows (window_start, genre, plays), in order."""
    out = [
        f"{_iso(w)},{_iso(w + WINDOW_MS)},{_quote(g)},{n}\n"
        for w, g, n in zip(
            rows.column("window_start").to_pylist(),
            rows.column("genre").to_pylist(),
            rows.column("plays").to_pylist(),
            strict=True,
        )
    ]
    return "".join(out).encode()


class CsvSink(ResultSink):
    """Appends final genre windows to one CSV file, exactly once."""

    name = "csv"
    guarantee = Guarantee.EXACTLY_ONCE
    single_writer = True

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self._reader: Reader | None = None
        self._mark: Mark | None = None  # the last append planned (committed or about to be)
        self._pending: Mark | None = None  # planned by begin(), written by write()

    @property
    def key(self) -> str:
        return f"csv:{self.path}"

    @classmethod
    def from_spec(cls, spec: SinkSpec) -> CsvSink:
        if not spec.target:
            raise ConfigError("the csv sink needs a file: --csv FILE")
        if spec.options:
            raise ConfigError(f"the csv sink takes no options (got {', '.join(spec.options)})")
        path = Path(spec.target)
        if path.is_dir():
            raise ConfigError(f"--csv {spec.target!r} is a folder: give a file name")
        return cls(path)

    def _rows(self, start: int | None, end: int) -> pa.Table:
        assert self._reader is not None, "resume() first"
        return self._reader.run(MetricRows(name="genre_minute", span=TimeRange(start, end)))

    def resume(self, batch_id: int, mark: Mark | None, reader: Reader) -> None:
        """Make the file hold exactly what ``mark`` says (after a crash at any point)."""
        self._reader = reader
        self._mark = mark
        if mark is None:
            return
        size = self.path.stat().st_size if self.path.exists() else 0
        if size < mark["size_before"]:  # deleted or cut short by hand: rebuild it all
            log.warning("%s is shorter than backbeat left it: rewriting it", self.path)
            self._write_at(0, HEADER + render(self._rows(mark["first"], mark["until"])))
        else:
            self._apply(mark)

    def begin(self, batch: SinkBatch) -> Mark | None:
        """The next append, if the watermark closed new windows (and, for a new file, the
        window it starts at: the first one of the first batch it sees)."""
        self._pending = None
        last, new = self._mark, self._mark is None
        if last is None:
            first = _first_window(batch.partials.get("genre_minute"))
            if first is None:
                return None
            last = {"first": first, "until": first}
        watermark = batch.watermarks.get(Topic.LISTEN.value)
        start = int(last["until"])
        until = start if watermark is None else max(start, (watermark // WINDOW_MS) * WINDOW_MS)
        if until == start and not new:
            return None
        size = 0 if new or not self.path.exists() else self.path.stat().st_size
        self._pending = {"path": str(self.path), "first": last["first"], "until_before": start,
                         "until": until, "size_before": size}  # fmt: skip
        return self._pending

    def write(
        self,
        batch_id: int,
        partials: Mapping[str, pa.Table],
        events: Mapping[Topic, pa.Table],
        dead_letters: pa.Table,
    ) -> None:
        """Append the windows :meth:`begin` planned (their final counts, from the store)."""
        if self._pending is not None:
            self._apply(self._pending)
            self._mark, self._pending = self._pending, None

    def _apply(self, mark: Mark) -> None:
        rows = self._rows(mark["until_before"], mark["until"])
        size = int(mark["size_before"])
        self._write_at(size, (HEADER if size == 0 else b"") + render(rows))

    def _write_at(self, offset: int, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)


def _first_window(rows: pa.Table | None) -> int | None:
    if rows is None or not rows.num_rows:
        return None
    low: int = pc.min(rows.column("window_start")).as_py()
    return low
