"""``backbeat batch compact-lake``: merge each hour's live files of a topic into one file named
after the batches it holds, and remove what interrupted runs left behind.

An hour with several live files (see ``layout.py``) becomes one file
``part-<first>-<last>.parquet``: the live files' rows in the contract's columns (a column a
file predates is null), sorted by ``ts``, zstd. It is written under a hidden name
(``.compact-<token>-<name>`` in the same folder, which readers skip), moved to its name (local:
one ``rename``; S3: a server-side copy, atomic for readers) and only then are the files it
merged deleted. A kill at any point is harmless: before the move the lake is unchanged but for
a hidden file; after it the merged file *covers* the old ones (their batches lie inside its
range), so :meth:`Lake.live_files` reads each event once, and the next run deletes covered
files. Each run also removes hidden merge files and ``_pending/<token>`` folders (staged by a
sink) older than ``orphan_age``; younger ones may belong to a live writer and are kept. (One
old staged folder is not abandoned: that of a stream's last batch when the stream was killed
between its commit and its publish and stays down longer than ``orphan_age``; its restart
would publish it. Restart such a stream before compacting, or raise ``orphan_age``.)

Safe while a stream writes the same lake: one process writes a lake, and it publishes a
batch's files only after every earlier batch's files, so a file published while an hour is
being merged holds a higher batch id than every file listed for the merge: it is not covered
by the merged range, stays live, and is merged by the next run. (The only file that can appear
with a batch id inside the range is a republished copy of a batch already merged, the same
events: covered, and deleted next time.) Run one compaction at a time per lake.

Next: ``backbeat.commands.lake`` (the command), ``layout.py`` (names and live files).
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Final

from pyarrow import fs

from backbeat.events.schema import Topic
from backbeat.sinks.durable import fsync
from backbeat.sinks.lake.layout import (
    PENDING,
    Lake,
    batch_range,
    hour_path,
    live,
    part_name,
)

log = logging.getLogger(__name__)

HIDDEN: Final = ".compact-"
"""The prefix of a merged file being written (a reader skips names starting with ``.``)."""
ORPHAN_AGE: Final = timedelta(hours=1)

OnHour = Callable[[int, int, str], None]
"""Called after each topic-hour with (hours done, hours in all, what was done)."""


@dataclass(frozen=True)
class CompactReport:
    """What a compaction did.

    Attributes:
        hours: topic-hours merged into one file.
        files_before: live files of those hours before.
        files_after: files those hours hold after (one each).
        bytes_before: their size before.
        bytes_after: the merged files' size.
        orphans: covered files, hidden merge files and staged folders removed.
    """

    hours: int = 0
    files_before: int = 0
    files_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    orphans: int = 0

    def __add__(self, other: CompactReport) -> CompactReport:
        return CompactReport(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(self))
        )


def compact_lake(
    lake: Lake,
    topics: Iterable[Topic] | None = None,
    hour: int | None = None,
    orphan_age: timedelta = ORPHAN_AGE,
    on_hour: OnHour | None = None,
) -> CompactReport:
    """Merge every hour (or only ``hour``, epoch ms // ``HOUR_MS``) of ``topics`` (default: all)
    and remove orphans older than ``orphan_age``.

    Raises:
        StoreError: the lake cannot be read or written (what was done so far stays valid;
            run again).
    """
    cutoff = time.time() - orphan_age.total_seconds()
    chosen = list(topics or Topic)
    work = [(t, h) for t in chosen for h in ([hour] if hour is not None else lake.hours(t))]
    report = CompactReport(orphans=_sweep_pending(lake, cutoff))
    for done, (topic, h) in enumerate(work, start=1):
        step = compact_hour(lake, topic, h, cutoff)
        report += step
        if on_hour is not None:
            what = "merged" if step.hours else "nothing to merge"
            on_hour(done, len(work), f"{hour_path(topic.value, h)}: {what}")
    return report


def compact_hour(lake: Lake, topic: Topic, hour: int, cutoff: float) -> CompactReport:
    """Remove an hour's orphans (covered files; hidden merge files last changed before
    ``cutoff``, epoch seconds), then merge its live files if there are several."""
    folder = lake.folder(topic, hour)
    infos = lake.listing(folder)
    data = [i for i in infos if batch_range(i.base_name)]
    keep = set(live([i.base_name for i in data]))
    stale = [i for i in data if i.base_name not in keep]
    stale += [i for i in infos if i.base_name.startswith(HIDDEN) and _older(i, cutoff)]
    _delete_files(lake, [i.path for i in stale])
    merged = [i for i in data if i.base_name in keep]
    if len(merged) < 2:
        return CompactReport(orphans=len(stale))
    name, size = merge(lake, topic, folder, merged)
    log.info("%s: merged %d files into %s", folder, len(merged), name)
    _delete_files(lake, [i.path for i in merged])
    return CompactReport(1, len(merged), 1, sum(i.size or 0 for i in merged), size, len(stale))


def merge(lake: Lake, topic: Topic, folder: str, files: list[fs.FileInfo]) -> tuple[str, int]:
    """Write ``files`` (live files of one hour) as one file in ``folder``, under a hidden name
    then moved to the name of its batch range; that name and its size. Deletes nothing.

    Raises:
        StoreError: the files cannot be read, or the merged file written.
    """
    ranges = [r for i in files if (r := batch_range(i.base_name))]
    name = part_name(min(r[0] for r in ranges), max(r[1] for r in ranges))
    rows = lake.read(topic, files).sort_by("ts")
    hidden = f"{folder}/{HIDDEN}{uuid.uuid4().hex}-{name}"
    lake.write(hidden, rows)  # durable before it replaces the files it merges
    try:
        lake.filesystem.move(hidden, f"{folder}/{name}")
        if lake.local:
            fsync(folder)
        size = lake.filesystem.get_file_info(f"{folder}/{name}").size or 0
    except OSError as exc:
        raise lake.failure("write", exc) from None
    return name, size


def _sweep_pending(lake: Lake, cutoff: float) -> int:
    """Delete the ``_pending/<token>`` folders nothing in which changed since ``cutoff``."""
    base = f"{lake.root}/{PENDING}"
    newest: dict[str, float | None] = {}
    for info in lake.listing(base, recursive=True):
        token = info.path[len(base) + 1 :].split("/", 1)[0]
        seen = info.mtime.timestamp() if info.mtime is not None else None
        before = newest.get(token)
        newest[token] = seen if before is None else max(before, seen or before)
    old = [t for t, m in newest.items() if m is not None and m < cutoff]
    for token in old:
        log.info("%s: deleting %s/%s, staged and abandoned", lake.url, PENDING, token)
        try:
            with contextlib.suppress(FileNotFoundError):
                lake.filesystem.delete_dir(f"{base}/{token}")
        except OSError as exc:
            raise lake.failure("clean", exc) from None
    return len(old)


def _older(info: fs.FileInfo, cutoff: float) -> bool:
    return info.mtime is not None and info.mtime.timestamp() < cutoff


def _delete_files(lake: Lake, paths: list[str]) -> None:
    try:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                lake.filesystem.delete_file(path)
    except OSError as exc:
        raise lake.failure("delete", exc) from None
