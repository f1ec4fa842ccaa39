"""What a catalog knows, filled into listens that left it out (eventsim's own records).

A listen from eventsim's Kafka fork names its ``artist`` and ``song`` but carries none of
backbeat's additions. With a catalog (``stream --catalog``: the Kaggle Spotify Tracks CSV or
eventsim's ``listen_counts.txt.gz``), :class:`Enricher` fills a missing ``trackId``,
``genre``, ``mood`` and ``duration`` from the track of the same artist and title (any case);
what the catalog does not know stays unknown. A listen that carries a value keeps it.

Next: ``pipeline.py`` (which calls it after validation), ``backbeat.replay.catalog`` (the
lookup table).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa

from backbeat.scratch import scratch

_SQL: Final = """
SELECT t.* REPLACE (
    coalesce(t.trackId, c.track_id) AS trackId,
    coalesce(t.genre, c.genre) AS genre,
    coalesce(t.mood, c.mood) AS mood,
    coalesce(t.duration, c.duration) AS duration
)
FROM _listens t
LEFT JOIN (SELECT DISTINCT ON (artist_key, song_key) * FROM _catalog) c
       ON c.artist_key = lower(t.artist) AND c.song_key = lower(t.song)
ORDER BY t._row
"""


class Enricher:
    """Fills listens' missing track, genre, mood and duration from a catalog."""

    def __init__(self, lookup: pa.Table) -> None:
        """``lookup``: ``backbeat.replay.catalog.lookup`` of a catalog."""
        self._lookup = lookup

    def listens(self, table: pa.Table) -> pa.Table:
        """``table`` (listen events) with what the catalog knows filled in, rows in order."""
        if not table.num_rows or not any(
            table.column(c).null_count for c in ("trackId", "genre", "mood", "duration")
        ):
            return table
        con = scratch()
        con.register("_listens", table.append_column("_row", pa.array(np.arange(table.num_rows))))
        con.register("_catalog", self._lookup)
        try:
            filled = con.sql(_SQL).to_arrow_table()
        finally:
            con.unregister("_listens")
            con.unregister("_catalog")
        return filled.drop_columns(["_row"]).cast(table.schema)
