"""Where the lake keeps what, read by the lake sink, ``compact-lake`` and the warehouse's
hourly load.

``URL/<topic>/year=Y/month=M/day=D/hour=H/<file>`` (UTC event hour; the numbers unpadded, as
Spark's ``partitionBy`` writes them). A file's name says which committed batches it holds:
``part-<batch:012d>.parquet`` (one batch, written by the sink) or
``part-<first:012d>-<last:012d>.parquet`` (batches ``first..last`` merged by ``compact-lake``).
A merged file *covers* the files whose batches lie inside its range: :meth:`Lake.live_files`
leaves them out, so a crash between writing a merged file and deleting what it replaced never
shows an event twice, and the next ``compact-lake`` deletes the covered files. Folders and
files starting with ``_`` or ``.`` are never data (staged batches, files being written).

Next: ``sink.py`` (the writer), ``compact.py`` (merging an hour's files).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs

from backbeat.errors import ConfigError, StoreError
from backbeat.events.schema import Topic, arrow_schema
from backbeat.sinks.durable import fsync

HOUR_MS: Final = 3_600_000
PENDING: Final = "_pending"
"""Staged files, one folder per uncommitted or unpublished batch (ignored by readers)."""
OPTIONS: Final = frozenset({"endpoint", "region"})
PART: Final = re.compile(r"part-(\d{12})(?:-(\d{12}))?\.parquet")
LIST_ATTEMPTS: Final = 5
_HOUR_DIR: Final = re.compile(r"year=(\d+)/month=(\d+)/day=(\d+)/hour=(\d+)$")


def hour_path(topic: str, hour: int) -> str:
    """``<topic>/year=Y/month=M/day=D/hour=H`` of an hour (epoch ms // ``HOUR_MS``), in UTC."""
    t = datetime.fromtimestamp(hour * 3600, tz=UTC)
    return f"{topic}/year={t.year}/month={t.month}/day={t.day}/hour={t.hour}"


def hour_of(year: int, month: int, day: int, hour: int) -> int:
    """The hour number (epoch ms // ``HOUR_MS``) of a UTC date and hour.

    Raises:
        ConfigError: not a date.
    """
    try:
        return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp()) // 3600
    except ValueError as exc:
        raise ConfigError(f"--year/--month/--day/--hour: {exc}") from None


def part_name(first: int, last: int | None = None) -> str:
    """The file holding batch ``first`` (or the merged batches ``first..last``)."""
    if last is None or last == first:
        return f"part-{first:012d}.parquet"
    return f"part-{first:012d}-{last:012d}.parquet"


def batch_range(name: str) -> tuple[int, int] | None:
    """The batches a data file's name says it holds (None: not a data file)."""
    found = PART.fullmatch(name)
    if found is None:
        return None
    first = int(found.group(1))
    return first, int(found.group(2) or first)


def live(names: list[str]) -> list[str]:
    """The data files among ``names`` that no other file covers (ordered by first batch)."""
    ranges = {n: r for n in names if (r := batch_range(n)) is not None}

    def covered(r: tuple[int, int]) -> bool:
        return any(o != r and o[0] <= r[0] and r[1] <= o[1] for o in ranges.values())

    return sorted((n for n, r in ranges.items() if not covered(r)), key=lambda n: ranges[n])


def open_lake(url: str, options: Mapping[str, str]) -> tuple[fs.FileSystem, str]:
    """The filesystem and root path of a lake URL (a folder, ``file://``, ``s3://``...).

    Raises:
        ConfigError: a URL pyarrow cannot open, an option other than ``OPTIONS``, or an
            endpoint without ``s3://``.
    """
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise ConfigError(
            f"the lake has no option {', '.join(unknown)} (it takes: endpoint, region)"
        )
    scheme = urlsplit(url).scheme if "://" in url else ""
    if options.get("endpoint") and scheme != "s3":
        raise ConfigError(f"the lake endpoint option needs an s3:// lake (got {url!r})")
    if scheme in ("", "file"):
        path = url.removeprefix("file://") if scheme else url
        return fs.LocalFileSystem(), os.path.abspath(path)
    if scheme == "s3":
        parts = urlsplit(url)
        root = f"{parts.netloc}{parts.path}".rstrip("/")
        if not parts.netloc:
            raise ConfigError(f"--lake {url!r}: name a bucket (s3://bucket/prefix)")
        endpoint = options.get("endpoint")
        where = urlsplit(endpoint) if endpoint else None
        region = (
            options.get("region")
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        )
        s3 = fs.S3FileSystem(
            endpoint_override=where.netloc if where else None,
            scheme=where.scheme if where and where.scheme else "https",
            region=region,
        )
        return s3, root
    try:
        filesystem, root = fs.FileSystem.from_uri(url)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConfigError(f"--lake {url!r}: {exc}") from None
    return filesystem, root.rstrip("/")


@dataclass(frozen=True)
class Lake:
    """A lake's filesystem and root, and what its folders hold."""

    url: str
    filesystem: fs.FileSystem
    root: str
    endpoint: str | None = None
    """An S3-compatible server's URL (MinIO, moto), None for AWS or a local lake."""

    @classmethod
    def open(cls, url: str, options: Mapping[str, str] | None = None) -> Lake:
        """Raises:
        ConfigError: a URL pyarrow cannot open, or an endpoint without ``s3://``."""
        filesystem, root = open_lake(url.rstrip("/"), options or {})
        return cls(url.rstrip("/"), filesystem, root, (options or {}).get("endpoint"))

    @property
    def local(self) -> bool:
        return isinstance(self.filesystem, fs.LocalFileSystem)

    def folder(self, topic: Topic | str, hour: int) -> str:
        return f"{self.root}/{hour_path(str(getattr(topic, 'value', topic)), hour)}"

    def hours(self, topic: Topic) -> list[int]:
        """The event hours (epoch ms // ``HOUR_MS``) that hold files of ``topic``, ascending."""
        found = self.listing(f"{self.root}/{topic.value}", recursive=True)
        hours = set()
        for info in found:
            if info.type != fs.FileType.Directory:
                continue
            match = _HOUR_DIR.search(info.path)
            if match:
                hours.add(hour_of(*(int(g) for g in match.groups())))
        return sorted(hours)

    def files(self, topic: Topic, hour: int) -> list[fs.FileInfo]:
        """Every data file in an hour's folder, covered ones included (by first batch)."""
        infos = [i for i in self.listing(self.folder(topic, hour)) if batch_range(i.base_name)]
        return sorted(infos, key=lambda i: batch_range(i.base_name) or (0, 0))

    def live_files(self, topic: Topic, hour: int) -> list[fs.FileInfo]:
        """The hour's files a reader should read: those no merged file covers."""
        infos = self.files(topic, hour)
        keep = set(live([i.base_name for i in infos]))
        return [i for i in infos if i.base_name in keep]

    def read_hour(
        self, topic: Topic, hour: int, files: list[fs.FileInfo] | None = None
    ) -> pa.Table:
        """An hour's events of ``topic`` (its live files, or ``files`` when already listed)."""
        return self.read(topic, self.live_files(topic, hour) if files is None else files)

    def read(self, topic: Topic, files: list[fs.FileInfo]) -> pa.Table:
        """The rows of ``files`` in the contract's columns of ``topic`` (a column a file
        predates reads as null).

        Raises:
            StoreError: a file cannot be read.
        """
        schema = arrow_schema(topic)
        if not files:
            return schema.empty_table()
        try:
            dataset = ds.dataset([i.path for i in files], schema=schema, format="parquet",
                                 filesystem=self.filesystem)  # fmt: skip
            return dataset.to_table()
        except (OSError, pa.ArrowInvalid) as exc:
            raise self.failure("read", exc) from None

    def write(self, path: str, rows: pa.Table) -> None:
        """Write ``rows`` as one Parquet file (zstd) at ``path``; on a local lake the folder
        is created and the file fsynced (durable before anything names it).

        Raises:
            StoreError: the file cannot be written.
        """
        try:
            if self.local:
                os.makedirs(os.path.dirname(path), exist_ok=True)
            pq.write_table(rows, path, filesystem=self.filesystem, compression="zstd")
            if self.local:
                fsync(path)
        except OSError as exc:
            raise self.failure("write", exc) from None

    def listing(self, path: str, recursive: bool = False) -> list[fs.FileInfo]:
        """What ``path`` holds (nothing when it does not exist); StoreError if unreadable.

        A writer may move or delete an entry between the listing's read of a folder and its
        look at that entry (pyarrow then fails the whole listing): such a listing is taken
        again, a few times."""
        selector = fs.FileSelector(path, allow_not_found=True, recursive=recursive)
        for attempt in range(LIST_ATTEMPTS):
            try:
                return list(self.filesystem.get_file_info(selector))
            except FileNotFoundError as exc:
                if attempt == LIST_ATTEMPTS - 1:
                    raise self.failure("list", exc) from None
            except OSError as exc:
                raise self.failure("list", exc) from None
        return []

    def failure(self, doing: str, exc: Exception) -> StoreError:
        message = " ".join(str(exc).split())[:300]
        return StoreError(f"the lake at {self.url} failed to {doing}: {message}")
