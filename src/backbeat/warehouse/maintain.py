"""``backbeat batch compact``: fewer files per hour, old snapshots expired, orphans deleted.

pyiceberg has no file rewrite action, so compaction replaces an hour that holds more than one
data file with its own rows (one ``overwrite`` on the hour: the reader sees the same rows
before and after, in one file per hour while an hour stays under the target file size).
Snapshots older than ``--keep`` (time travel reaches back that far) are expired, the current
one never. Then data files under a table's ``data/`` folder that no remaining snapshot
references and older than the orphan age are deleted: what expired snapshots alone used,
and what a job killed before its commit wrote (never a young file: a running job may be
about to commit it).

Next: ``run.py``.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pyarrow import fs

from backbeat.errors import StoreError
from backbeat.warehouse import hours
from backbeat.warehouse.catalog import Warehouse

if TYPE_CHECKING:
    from pyiceberg.table import Table


@dataclass(frozen=True)
class Tidied:
    """What one maintenance pass did to one table."""

    table: str
    hours_compacted: int
    files_before: int
    files_after: int
    snapshots_expired: int
    orphans_deleted: int


def files_per_hour(table: Table) -> Counter[int]:
    """How many data files each ``hour(ts)`` partition of ``table`` holds now."""
    files = table.inspect.files()
    return Counter(int(p["ts_hour"]) for p in files.column("partition").to_pylist())


def compact_hour(warehouse: Warehouse, table: Table, hour: int) -> None:
    """Rewrite ``hour`` of ``table`` as its own rows (one commit).

    Raises:
        StoreError: the catalog or the files refused.
    """
    rows = table.scan(row_filter=hours.within(hour)).to_arrow().sort_by("ts")
    warehouse.commit(
        table,
        lambda: table.overwrite(
            rows,
            overwrite_filter=hours.within(hour),
            snapshot_properties={"backbeat.job": "compact", "backbeat.hour": hours.label(hour)},
        ),
    )


def tidy(
    warehouse: Warehouse,
    name: str,
    keep: timedelta,
    orphan_age: timedelta,
    only: set[int] | None = None,
) -> Tidied:
    """Compact every hour of table ``name`` holding more than one file (or only the hours in
    ``only``), expire snapshots older than ``keep``, delete orphans older than ``orphan_age``.

    Raises:
        StoreError: the catalog or the files refused.
    """
    table = warehouse.refresh(name)
    if "ts" not in table.schema().column_names:  # a small table (``jobs``): one file
        files = len(table.inspect.files())
        if files > 1:
            rows = table.scan().to_arrow()
            warehouse.commit(table, lambda: table.overwrite(rows))
        after_files = len(table.inspect.files())
        expired = expire(warehouse, table, datetime.now(UTC) - keep)
        orphans = delete_orphans(warehouse, table, orphan_age)
        return Tidied(name, int(files > 1), files, after_files, expired, orphans)
    before = files_per_hour(table)
    crowded = [h for h, n in sorted(before.items()) if n > 1 and (only is None or h in only)]
    for hour in crowded:
        compact_hour(warehouse, table, hour)
    after = files_per_hour(table)
    expired = expire(warehouse, table, datetime.now(UTC) - keep)
    orphans = delete_orphans(warehouse, table, orphan_age)
    return Tidied(name, len(crowded), sum(before.values()), sum(after.values()), expired, orphans)


def expire(warehouse: Warehouse, table: Table, older_than: datetime) -> int:
    """Expire the snapshots of ``table`` older than ``older_than`` (never the current one)."""
    current = table.current_snapshot()
    old = [
        s.snapshot_id
        for s in table.snapshots()
        if s.timestamp_ms < older_than.timestamp() * 1000
        and (current is None or s.snapshot_id != current.snapshot_id)
    ]
    if old:
        warehouse.commit(table, lambda: table.maintenance.expire_snapshots().by_ids(old).commit())
    return len(old)


def delete_orphans(warehouse: Warehouse, table: Table, older_than: timedelta) -> int:
    """Delete data files of ``table`` no snapshot references, older than ``older_than``; 0 when
    the table's files are not under the lake (another storage: left to its own tools)."""
    lake = warehouse.lake
    folder = warehouse.lake_path(f"{table.location()}/data")
    if folder is None:
        return 0
    referenced = {
        warehouse.lake_path(p) for p in table.inspect.all_files().column("file_path").to_pylist()
    }
    cutoff = time.time() - older_than.total_seconds()
    deleted = 0
    try:
        selector = fs.FileSelector(folder, recursive=True, allow_not_found=True)
        for info in lake.filesystem.get_file_info(selector):
            if info.type != fs.FileType.File or info.path in referenced:
                continue
            if info.mtime is not None and info.mtime.timestamp() > cutoff:
                continue
            with contextlib.suppress(FileNotFoundError):
                lake.filesystem.delete_file(info.path)
            deleted += 1
    except OSError as exc:
        raise StoreError(f"the warehouse failed to clean {folder}: {exc}") from None
    return deleted
