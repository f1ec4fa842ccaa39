"""Read a Parquet lake back (local or S3) and say how it differs from the events it should
hold: each event once, in the file of its event hour, named after a batch (or a merged range of
batches), contract columns, nothing left staged.

Next: ``tests/sinks/test_lake.py``, ``tests/sinks/test_suite.py`` (the ``sink:lake`` case).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pyarrow import fs

from backbeat.events.schema import Topic, arrow_schema

FILE = re.compile(
    r"year=(\d+)/month=(\d+)/day=(\d+)/hour=(\d+)/part-(\d{12})(?:-\d{12})?\.parquet$"
)


def hour_of(ms: int) -> tuple[int, int, int, int]:
    t = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return t.year, t.month, t.day, t.hour


def read_topic(root: str, topic: Topic, filesystem: fs.FileSystem | None = None) -> ds.Dataset:
    """One topic of the lake as a Hive-partitioned Parquet dataset."""
    return ds.dataset(f"{root}/{topic.value}", filesystem=filesystem, format="parquet",
                      partitioning="hive")  # fmt: skip


def lake_problems(
    root: object,
    filesystem: fs.FileSystem | None,
    batches: Sequence[Mapping[Topic, pa.Table]],
) -> list[str]:
    """What is wrong with the lake at ``root`` given the events of ``batches`` (empty: right)."""
    base = str(root)
    problems = []
    topics = {t for b in batches for t in b}
    for topic in sorted(topics):
        want = pa.concat_tables([b[topic].select(["eventId", "ts"]) for b in batches if topic in b])
        dataset = read_topic(base, topic, filesystem)
        names = [f.name for f in dataset.schema]
        if names != [*arrow_schema(topic).names, "year", "month", "day", "hour"]:
            problems.append(f"{topic}: columns {names}")
        got = dataset.to_table(columns=["eventId", "ts", "year", "month", "day", "hour"])
        counts = Counter(got.column("eventId").to_pylist())
        doubled = [k for k, n in counts.items() if n > 1]
        if doubled:
            problems.append(f"{topic}: {len(doubled)} events held twice or more, e.g. {doubled[0]}")
        wanted = set(want.column("eventId").to_pylist())
        if set(counts) != wanted:
            problems.append(f"{topic}: {len(wanted - set(counts))} missing, "
                            f"{len(set(counts) - wanted)} unexpected")  # fmt: skip
        per_hour = Counter(hour_of(ms) for ms in want.column("ts").to_pylist())
        stored = Counter(zip(*(got.column(c).to_pylist() for c in ("year", "month", "day", "hour")),
                             strict=True))  # fmt: skip
        if stored != per_hour:
            problems.append(f"{topic}: per hour {dict(stored)}, expected {dict(per_hour)}")
        problems += _file_problems(topic, dataset, filesystem)
    problems += _staged(base, filesystem)
    return problems


def _file_problems(
    topic: Topic, dataset: ds.Dataset, filesystem: fs.FileSystem | None
) -> list[str]:
    problems = []
    for fragment in dataset.get_fragments():
        match = FILE.search(fragment.path)
        if match is None:
            problems.append(f"{topic}: a file named {fragment.path}")
            continue
        ts = fragment.to_table(columns=["ts"]).column("ts")
        hours = {hour_of(ms) for ms in (pc.min(ts).as_py(), pc.max(ts).as_py())}
        if hours != {tuple(int(g) for g in match.groups()[:4])}:
            problems.append(f"{topic}: {fragment.path} holds events of hours {hours}")
    return problems


def _staged(base: str, filesystem: fs.FileSystem | None) -> list[str]:
    lake = filesystem or fs.LocalFileSystem()
    left = lake.get_file_info(fs.FileSelector(f"{base}/_pending", allow_not_found=True,
                                              recursive=True))  # fmt: skip
    files = [i.path for i in left if i.type == fs.FileType.File]
    return [f"staged files left: {files[:3]}"] if files else []
