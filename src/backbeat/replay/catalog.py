"""What a catalog knows of the tracks a history names: duration, genre and mood.

:func:`lookup` turns a :class:`~backbeat.simulate.catalog.Catalog` (the Kaggle Spotify Tracks
CSV, eventsim's ``listen_counts.txt.gz``) into the table that replayed plays
(``listens.py``) and streamed listens (``backbeat.engine.enrich``) are completed from: by
Spotify track id first, else by artist and title (lower case).

Next: ``listens.py`` (the join), ``backbeat.simulate.catalog`` (the loaders).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from backbeat.events.schema import MOODS
from backbeat.simulate.catalog import Catalog
from backbeat.simulate.catalog_file import load_catalog


def lookup_file(path: Path) -> pa.Table:
    """:func:`lookup` of a ``--catalog`` file (either format).

    Raises:
        SourceError: the file cannot be read or is neither format.
    """
    return lookup(load_catalog(path))


def lookup(catalog: Catalog) -> pa.Table:
    """Columns ``track_id``, ``artist_key``, ``song_key``, ``duration`` (s), ``genre``,
    ``mood``: one row per catalog track."""
    return pa.table(
        {
            "track_id": catalog.track_id,
            "artist_key": pc.utf8_lower(catalog.artist),
            "song_key": pc.utf8_lower(catalog.song),
            "duration": pa.array(catalog.duration_s, pa.float64()),
            "genre": catalog.genre_names.take(pa.array(catalog.track_genre)),
            "mood": pa.array(MOODS, pa.string()).take(pa.array(catalog.mood)),
        }
    )
