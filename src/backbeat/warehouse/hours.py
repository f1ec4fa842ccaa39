"""Event hours: how the batch jobs name them, filter tables by them and fingerprint them.

An hour is ``epoch ms // 3,600,000`` (UTC), as the lake names its folders. Every job reads
and replaces one hour of a table at a time with an Iceberg filter on ``ts`` aligned with the
``hour(ts)`` partitions, so whole files are dropped and none is rewritten.

Next: ``load.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from pyarrow import fs


def label(hour: int) -> str:
    """``2026-12-07T10`` for people."""
    return datetime.fromtimestamp(hour * 3600, tz=UTC).strftime("%Y-%m-%dT%H")


def iso(hour: int) -> str:
    return datetime.fromtimestamp(hour * 3600, tz=UTC).isoformat()


def within(hour: int) -> str:
    """Rows whose ``ts`` lies in ``hour`` (a pyiceberg row filter)."""
    return f"ts >= '{iso(hour)}' AND ts < '{iso(hour + 1)}'"


def between(start_ms: int | None, end_ms: int | None) -> str:
    """Rows whose ``ts`` lies in ``[start, end)`` (either side open when None)."""

    def at(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()

    sides = ([f"ts >= '{at(start_ms)}'"] if start_ms is not None else []) + (
        [f"ts < '{at(end_ms)}'"] if end_ms is not None else []
    )
    return " AND ".join(sides) or "true"


def fingerprint(files: Sequence[fs.FileInfo]) -> str:
    """What an hour's lake files are (names and sizes): changes when a file is added,
    replaced or merged differently; equal when nothing changed."""
    digest = hashlib.sha256()
    for info in sorted(files, key=lambda i: i.base_name):
        digest.update(f"{info.base_name}:{info.size}\n".encode())
    return digest.hexdigest()[:16]
