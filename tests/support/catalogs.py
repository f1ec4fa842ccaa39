"""Catalog files as users download them, written from a synthetic catalog: the Kaggle Spotify
Tracks CSV (with its leading unnamed index column) and eventsim's ``listen_counts`` TSV.

Next: ``tests/simulate/test_catalog_file.py`` and ``tests/cli/test_catalog_flag.py`` use them.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from backbeat.simulate.synthetic import synthetic_catalog


def write_kaggle_csv(
    path: Path, n_tracks: int = 200, n_genres: int = 5, seed: int = 11
) -> pa.Table:
    """A Kaggle-format CSV of a synthetic catalog at ``path``; returns the tracks written."""
    table = synthetic_catalog(n_tracks=n_tracks, n_genres=n_genres, seed=seed).table
    write_kaggle_table(path, table)
    return table


def write_kaggle_table(path: Path, table: pa.Table) -> None:
    """``table`` (a catalog's tracks, in the Kaggle columns) as a Kaggle-format CSV."""
    indexed = table.add_column(0, "", pa.array(range(table.num_rows), pa.int64()))
    pacsv.write_csv(indexed, path)


def write_listen_counts(path: Path, n_tracks: int = 50, *, gz: bool = True) -> list[str]:
    """eventsim-style listen counts (trackId, artist, title, seconds, count); returns the ids."""
    ids = [f"TR{i:016d}" for i in range(n_tracks)]
    lines = "".join(
        f"{tid}\tArtist {i % 7}\tSong {i}\t{150 + i:.3f}\t{1 + i * 3}\n"
        for i, tid in enumerate(ids)
    ).encode()
    path.write_bytes(gzip.compress(lines, mtime=0) if gz else lines)
    return ids
