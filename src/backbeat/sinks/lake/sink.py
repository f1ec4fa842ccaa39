"""The Parquet lake sink (``--sink lake --lake URL``): every batch's valid raw events, one
Parquet file per topic and event hour, Hive-partitioned, exactly once by batch id.

Layout: ``URL/<topic>/year=Y/month=M/day=D/hour=H/part-<batch_id:012d>.parquet`` (UTC event
time, contract columns; the numbers unpadded, as Spark's ``partitionBy`` writes them).
``URL`` is a local folder or any pyarrow filesystem URL: ``s3://bucket/prefix`` (with
``--sink-option lake.endpoint=http://host:port`` for MinIO or moto, credentials from the
standard ``AWS_*`` variables, never logged or stored in a mark).

Why the files are staged: the sink sees a batch's events only in :meth:`~LakeSink.begin`
(before the store commits) and :meth:`~LakeSink.write` (after), and the batch id that names
the files exists only after the commit, while the store keeps no copy of most events (only
listens), so an interrupted write could not be redone from the store. So :meth:`begin`
writes the batch's files under ``URL/_pending/<token>/`` (a fresh token per batch; readers
skip ``_``-prefixed folders) and returns ``{token, files}`` as the mark committed with the
batch; :meth:`write` moves each staged file to its final name under the batch id (local: one
``rename`` in the same filesystem; S3: a server-side copy, atomic for the reader, then a
delete); a final file is therefore visible only once complete. After a kill:

- before the commit: the token was never committed; the batch is re-read from the same
  positions and staged again under a new token; :meth:`resume` deletes the orphan.
- between the commit and the end of the write: :meth:`resume` gets the store's last batch id
  and this mark (committed with that batch) and moves the staged files that are still there
  (a file moved twice is the same bytes under the same name).
- after the write: nothing is staged; resuming changes nothing.

A replayed batch thus overwrites its own files and never adds one. One process writes a lake
(``single_writer``): the mark is one per sink, and :meth:`resume` sweeps every staged token.

Next: ``layout.py`` (the folders and file names), ``compact.py`` (merging an hour's files).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import fs

from backbeat.errors import ConfigError
from backbeat.events.schema import Topic, arrow_schema
from backbeat.sinks.base import Guarantee, Mark, ResultSink, SinkBatch, SinkSpec
from backbeat.sinks.lake.layout import HOUR_MS, PENDING, Lake, part_name
from backbeat.sinks.queries import Reader

log = logging.getLogger(__name__)


class LakeSink(ResultSink):
    """Raw events as Parquet by topic and event hour, exactly once by batch id."""

    name = "lake"
    guarantee = Guarantee.EXACTLY_ONCE
    single_writer = True
    wants_events = frozenset(Topic)

    def __init__(self, url: str, options: Mapping[str, str] | None = None) -> None:
        self.lake = Lake.open(url, options)
        self.url = self.lake.url
        self._pending: Mark | None = None  # staged by begin(), not yet published

    @property
    def key(self) -> str:
        where = self.lake.root if self.lake.local else self.url
        return f"lake:{where}"

    @classmethod
    def from_spec(cls, spec: SinkSpec) -> LakeSink:
        if not spec.target:
            raise ConfigError("the lake sink needs a location: --lake FOLDER|s3://bucket/prefix")
        return cls(spec.target, spec.options)

    def resume(self, batch_id: int, mark: Mark | None, reader: Reader) -> None:
        """Publish what the last committed batch staged and did not publish; delete staged
        files of batches that were never committed.

        Raises:
            StoreError: the lake cannot be read or written.
        """
        keep = mark.get("token") if mark else None
        if mark and mark.get("files"):
            moved = self._publish(batch_id, mark)
            if moved:
                log.info("%s: published batch %d again (%d files)", self.key, batch_id, moved)
        self._sweep(keep)

    def begin(self, batch: SinkBatch) -> Mark | None:
        """Stage the batch's files; the mark names them (``{}``: a batch without events)."""
        token = uuid.uuid4().hex
        files: list[list[str | int]] = []
        for topic, table in batch.events.items():
            columns = table.select(arrow_schema(topic).names)
            for hour, rows in _by_hour(columns):
                self.lake.write(f"{self._staged(token)}/{topic.value}.{hour}.parquet", rows)
                files.append([topic.value, hour])
        self._pending = {"token": token, "files": files} if files else None
        return self._pending or {}

    def write(
        self,
        batch_id: int,
        partials: Mapping[str, pa.Table],
        events: Mapping[Topic, pa.Table],
        dead_letters: pa.Table,
    ) -> None:
        """Move the files :meth:`begin` staged to their names under ``batch_id``.

        Raises:
            StoreError: the lake cannot be written (redone by :meth:`resume` at restart).
        """
        if self._pending is not None:
            self._publish(batch_id, self._pending)
            self._pending = None

    def settle(self) -> Mark | None:
        """Nothing to redo after the last write (None while a staged batch is unpublished)."""
        return None if self._pending is not None else {}

    # ------------------------------------------------------------------ files

    def _staged(self, token: str) -> str:
        return f"{self.lake.root}/{PENDING}/{token}"

    def _publish(self, batch_id: int, mark: Mark) -> int:
        """Move a mark's staged files to their final names; how many were still staged."""
        staged, moved = self._staged(str(mark["token"])), 0
        try:
            for topic, hour in mark["files"]:
                source = f"{staged}/{topic}.{hour}.parquet"
                if self.lake.filesystem.get_file_info(source).type != fs.FileType.File:
                    continue  # published before the crash
                folder = self.lake.folder(str(topic), int(hour))
                if self.lake.local:
                    os.makedirs(folder, exist_ok=True)
                self.lake.filesystem.move(source, f"{folder}/{part_name(batch_id)}")
                moved += 1
            self._delete(staged)
        except OSError as exc:
            raise self.lake.failure("publish", exc) from None
        return moved

    def _sweep(self, keep: object) -> None:
        """Delete staged batches other than ``keep`` (never committed: re-read and staged
        again under another token)."""
        found = self.lake.listing(f"{self.lake.root}/{PENDING}")
        try:
            for info in found:
                if info.base_name != keep:
                    log.info("%s: deleting %s, staged by a batch never committed",
                             self.key, info.base_name)  # fmt: skip
                    self._delete(info.path)
        except OSError as exc:
            raise self.lake.failure("clean", exc) from None

    def _delete(self, folder: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.lake.filesystem.delete_dir(folder)


def _by_hour(table: pa.Table) -> list[tuple[int, pa.Table]]:
    """The table's rows grouped by event hour (epoch ms // ``HOUR_MS``), hours ascending."""
    if not table.num_rows:
        return []
    hours = pc.divide(table.column("ts"), pa.scalar(HOUR_MS, pa.int64()))
    return [
        (int(h), table.filter(pc.equal(hours, h))) for h in sorted(pc.unique(hours).to_pylist())
    ]
