"""Tracks from real exports land on the catalog's: by Spotify id (a ``spotify:track:`` URI
too), else by artist and title; tracks only a history knows are added with their genre, and
content vectors are unit length with genre counting most.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from backbeat.recommend.items import SEP, build_items, name_key
from backbeat.simulate.synthetic import synthetic_catalog


def _history(rows: list[dict[str, object]]) -> pa.Table:
    names = ("user_id", "track", "track_id", "artist", "song", "genre", "country", "plays",
             "weight", "first_ts", "last_ts")  # fmt: skip
    return pa.Table.from_pylist(
        [{n: row.get(n, 1 if n in ("plays", "weight") else None) for n in names} for row in rows]
    )


def test_history_tracks_map_to_the_catalog_by_id_then_by_name() -> None:
    catalog = synthetic_catalog(n_tracks=300, n_genres=5, seed=1)
    first = catalog.table.slice(0, 1).to_pylist()[0]
    second = catalog.table.slice(1, 1).to_pylist()[0]
    artist = second["artists"].split(";")[0]
    history = _history(
        [
            {"user_id": 1, "track": first["track_id"], "track_id": first["track_id"]},
            {"user_id": 1, "track": name_key(artist.upper(), second["track_name"]),
             "artist": artist.upper(), "song": second["track_name"], "genre": "jazz"},
            {"user_id": 2, "track": f"nobody{SEP}nothing", "artist": "Nobody",
             "song": "Nothing", "genre": "jazz"},
        ]
    )  # fmt: skip
    items = build_items(catalog, history)
    assert len(items) == catalog.n_tracks + 1  # only the unknown track is new
    at = items.find(first["track_id"])
    assert at is not None
    assert items.find("spotify:track:" + first["track_id"]) == at
    assert items.find(name_key(artist, second["track_name"])) == items.find(second["track_id"])
    new = items.find(f"nobody{SEP}nothing")
    assert new == catalog.n_tracks
    assert "jazz" in items.genres
    assert items.genres[items.genre[new]] == "jazz"
    norms = np.linalg.norm(items.content, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5)
    same_genre = items.genre == items.genre[at]
    cosine = items.content @ items.content[at]
    assert cosine[same_genre].mean() > cosine[~same_genre].mean() + 0.5
