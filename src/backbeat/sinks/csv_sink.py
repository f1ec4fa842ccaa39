"""The simplest output: one appended ``results.csv`` of plays per genre per final minute.

Columns are exactly ``window_start,window_end,genre,count`` (ISO-8601 UTC times). A window is
written once, when the listen watermark has passed its end, so a row never changes after it is
written. Exactly-once across crashes: the store commits a :class:`CsvMark` (which windows the
file must hold and its size before and after the append) in the same transaction as the
batch; the file is written after the commit by seeking to ``size_before`` and truncating, and
on start :meth:`CsvSink.recover` rewrites the last append from the store. A crash anywhere
leaves, after restart, each (window, genre) in the file exactly once.

Next: ``base.py`` (the mark), ``backbeat.engine.pipeline`` (who drives it).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from backbeat.analytics.metrics import WINDOW_MS
from backbeat.errors import ConfigError
from backbeat.sinks.base import CsvMark, Store

HEADER: Final = b"window_start,window_end,genre,count\n"
_NO_WINDOW: Final = -(2**62)


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


class CsvSink:
    """Appends final genre windows to one CSV file, exactly once."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()

    def _final_rows(self, store: Store, start: int, end: int) -> pa.Table:
        return store.metric(
            "genre_minute", "WHERE window_start >= ? AND window_start < ?", (start, end)
        )

    def recover(self, store: Store, mark: CsvMark | None) -> None:
        """Make the file hold exactly what ``mark`` says (after a crash at any point)."""
        if mark is None or Path(mark.path) != self.path:
            return
        size = self.path.stat().st_size if self.path.exists() else 0
        if size < mark.size_before:  # deleted or cut short by hand: rebuild it all
            data = HEADER + render(self._final_rows(store, _NO_WINDOW, mark.until))
            if len(data) != mark.size_after:
                raise ConfigError(
                    f"{str(self.path)!r} was changed outside backbeat and cannot be rebuilt "
                    "exactly; give --csv a new file name"
                )
            self._write_at(0, data)
            return
        data = self._final_rows(store, mark.until_before, mark.until)
        self._write_at(mark.size_before, (HEADER if mark.size_before == 0 else b"") + render(data))

    def plan(
        self,
        store: Store,
        mark: CsvMark | None,
        watermark: int | None,
        batch_rows: pa.Table,
    ) -> tuple[CsvMark, bytes] | None:
        """The next append, if the watermark closed new windows.

        ``batch_rows`` are this batch's (not yet committed) genre partials; they are added to
        what the store holds, so the rows written are the final values.
        """
        if watermark is None:
            return None
        until = (watermark // WINDOW_MS) * WINDOW_MS
        if mark is not None and Path(mark.path) != self.path:
            mark = None
        start = mark.until if mark is not None else _first_window(store, batch_rows)
        if start is None or until <= start:
            return None
        stored = self._final_rows(store, start, until)
        pending = batch_rows.filter(
            pc.and_(
                pc.greater_equal(batch_rows.column("window_start"), start),
                pc.less(batch_rows.column("window_start"), until),
            )
        )
        merged = _merge(stored, pending)
        size = mark.size_after if mark is not None else 0
        data = (HEADER if size == 0 else b"") + render(merged)
        return CsvMark(str(self.path), start, until, size, size + len(data)), data

    def write(self, mark: CsvMark, data: bytes) -> None:
        """Apply a committed append."""
        self._write_at(mark.size_before, data)

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


def _first_window(store: Store, batch_rows: pa.Table) -> int | None:
    stored = store.metric("genre_minute")
    lows = [pc.min(t.column("window_start")).as_py() for t in (stored, batch_rows) if t.num_rows]
    return min(lows) if lows else None


def _merge(stored: pa.Table, pending: pa.Table) -> pa.Table:
    both = pa.concat_tables(
        [
            stored.select(["window_start", "genre", "plays"]),
            pending.select(["window_start", "genre", "plays"]),
        ]
    )
    merged = both.group_by(["window_start", "genre"]).aggregate([("plays", "sum")])
    merged = merged.select(["window_start", "genre", "plays_sum"])
    merged = merged.rename_columns(["window_start", "genre", "plays"])
    return merged.sort_by([("window_start", "ascending"), ("genre", "ascending")])
