"""A catalog file as the command line names it (``--catalog FILE``): detect its format, load it.

Two formats are known: the Kaggle "Spotify Tracks Dataset" CSV (a header naming ``track_id``
and ``track_genre``, genres and audio features included; ``catalog.load_kaggle_tracks``) and
eventsim's ``listen_counts.txt.gz`` (five tab-separated fields a line, no header;
``synthetic.load_listen_counts``). The first line decides, gzip or not, so the name of the
file does not matter. Commands that take ``--catalog`` (``simulate``, ``produce``, ``demo``,
and ``replay``) call :func:`load_catalog`.

Next: ``catalog.py`` (what a catalog holds), ``synthetic.py`` (the default catalog).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Final, Literal

from backbeat.errors import SourceError
from backbeat.simulate.catalog import Catalog, load_kaggle_tracks
from backbeat.simulate.synthetic import load_listen_counts

CatalogFormat = Literal["kaggle", "listen-counts"]

_GZIP_MAGIC: Final = b"\x1f\x8b"
_HEAD_BYTES: Final = 64 * 1024
_KAGGLE_KEYS: Final = frozenset({"track_id", "track_genre"})
_LISTEN_COUNT_FIELDS: Final = 5


def catalog_format(path: str | Path) -> CatalogFormat:
    """Which catalog format ``path`` holds, from its first line.

    Raises:
        SourceError: the file cannot be read, or its first line is neither format's.
    """
    try:
        with Path(path).open("rb") as raw:
            magic = raw.read(2)
        opener = gzip.open if magic == _GZIP_MAGIC else open
        with opener(path, "rb") as fh:
            head = fh.readline(_HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise SourceError(f"{path}: cannot read the catalog: {exc}") from exc
    line = head.decode("utf-8", errors="replace").rstrip("\r\n")
    if line.count("\t") == _LISTEN_COUNT_FIELDS - 1:
        return "listen-counts"
    if _KAGGLE_KEYS.issubset(name.strip().strip('"') for name in line.split(",")):
        return "kaggle"
    raise SourceError(
        f"{path}: not a catalog: expected the Kaggle Spotify Tracks CSV (a header with "
        "track_id, ..., track_genre) or eventsim's listen_counts.txt.gz (trackId, artist, "
        "title, seconds, count: five tab-separated fields a line)"
    )


def load_catalog(path: str | Path) -> Catalog:
    """The catalog in ``path``, whichever of the two formats it is (see the module docstring).

    Raises:
        SourceError: the file cannot be read, is neither format, or is a broken one.
    """
    if catalog_format(path) == "kaggle":
        return load_kaggle_tracks(path)
    return load_listen_counts(path)
