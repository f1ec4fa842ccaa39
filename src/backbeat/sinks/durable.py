"""Durable local files: flush a file or a folder's entries to disk.

Next: ``lake/layout.py`` (the lake's files), ``duckdb/shelf.py`` (model files).
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync(path: str | Path) -> None:
    """Flush a local file, or a folder's entries (a new name, a removal), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
