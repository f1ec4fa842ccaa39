"""The tracks a model knows: a catalog's and those its history played, with content vectors.

Each track has a key (the Spotify/catalog ``track_id``, else ``artist<US>song`` in lower
case, as the ``Interactions`` query spells it), its names and genre, and a *content vector*:
its genre one-hot beside its audio features (danceability, energy, valence... standardized
over the catalog), L2-normalized, so the dot product of two vectors is their cosine: how alike
two tracks sound. Tracks only a history knows have a genre and no audio features. A history
row names a catalog track by its id or, failing that, by artist and title
(:meth:`Items.find`), so a real export's plays (Spotify URIs, or names only) land on the
catalog's tracks wherever the catalog knows them.

Next: ``history.py`` (the plays), ``rank.py`` (how vectors are used).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from backbeat.simulate.catalog import Catalog

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]

AUDIO: Final = (
    "danceability", "energy", "valence", "acousticness", "instrumentalness", "speechiness",
    "liveness", "tempo", "loudness",
)  # fmt: skip
AUDIO_WEIGHT: Final = 0.35
"""How much sound counts beside genre in a content vector (genre one-hot: 1)."""
SEP: Final = "\x1f"
URI_PREFIX: Final = "spotify:track:"
NAMES: Final = ("track", "track_id", "artist", "song", "genre")


def name_key(artist: str | None, song: str | None) -> str:
    """A track's key by names (``Interactions`` spells it so when a listen has no id)."""
    return f"{(artist or '').lower()}{SEP}{(song or '').lower()}"


@dataclass(frozen=True, eq=False)
class Items:
    """Tracks (one row each) and their content vectors; build with :func:`build_items`."""

    table: pa.Table  # NAMES columns, row i = item i
    genres: tuple[str, ...]
    genre: I32  # index into genres, -1: unknown
    content: F32  # (n, len(genres) + len(AUDIO)), rows of length 1 (or 0)
    index: dict[str, int]  # key, and name key of each catalog track -> row

    def __len__(self) -> int:
        return int(self.table.num_rows)

    @functools.cached_property
    def _lookup(self) -> tuple[pa.Array, npt.NDArray[np.int64]]:
        keys = list(self.index)
        return pa.array(keys, pa.string()), np.fromiter(self.index.values(), np.int64, len(keys))

    def rows_of(self, keys: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.int64]:
        """The rows of these track keys (each must be known: :meth:`grow` first)."""
        names, rows = self._lookup
        at = pc.index_in(keys, value_set=names)
        if at.null_count:
            raise KeyError(f"{at.null_count} track keys not among the items")
        out: npt.NDArray[np.int64] = rows[at.to_numpy(zero_copy_only=False)]
        return out

    def find(self, key: str) -> int | None:
        """The row of a track key, a ``spotify:track:`` URI or a name key; None: unknown."""
        if key.startswith(URI_PREFIX):
            key = key[len(URI_PREFIX) :]
        return self.index.get(key)

    def grow(self, rows: pa.Table) -> Items:
        """These items followed by the tracks of ``rows`` (NAMES columns) they do not know
        (genre one-hot only: their sound is unknown)."""
        keys = rows["track"].to_pylist()
        fresh = [i for i, key in enumerate(keys) if key not in self.index]
        if not fresh:
            return self
        new = rows.select(list(NAMES)).take(pa.array(fresh, pa.int64()))
        new = new.group_by("track", use_threads=False).aggregate(
            [(name, "first") for name in NAMES[1:]]
        )
        new = new.rename_columns(["track", *NAMES[1:]]).select(list(NAMES))
        genre = _genre_index(new["genre"], self.genres)
        content = _content(genre, np.full((new.num_rows, len(AUDIO)), np.nan), len(self.genres))
        index = dict(self.index)
        for offset, key in enumerate(new["track"].to_pylist()):
            index[key] = len(self) + offset
        return Items(
            table=pa.concat_tables([self.table, new.cast(self.table.schema)]).combine_chunks(),
            genres=self.genres,
            genre=np.concatenate([self.genre, genre]),
            content=np.concatenate([self.content, content]),
            index=index,
        )


def build_items(catalog: Catalog | None, history: pa.Table) -> Items:
    """The catalog's tracks (none without one) and then every track of ``history`` (rows of
    the ``Interactions`` query) the catalog does not know."""
    schema = pa.schema([(name, pa.string()) for name in NAMES])
    if catalog is None:
        base = schema.empty_table()
        genres = sorted({g for g in history["genre"].to_pylist() if g})
        audio = np.zeros((0, len(AUDIO)))
    else:
        base = pa.table(
            {
                "track": catalog.track_id,
                "track_id": catalog.track_id,
                "artist": catalog.artist,
                "song": catalog.song,
                "genre": catalog.genre_names.take(pa.array(catalog.track_genre)),
            },
            schema=schema,
        )
        extra = {g for g in history["genre"].to_pylist() if g} - set(catalog.genres)
        genres = [*catalog.genres, *sorted(extra)]
        audio = np.column_stack(
            [
                catalog.table[name].to_numpy(zero_copy_only=False).astype(np.float64)
                for name in AUDIO
            ]
        )
    genre = _genre_index(base["genre"], tuple(genres))
    items = Items(
        table=base,
        genres=tuple(genres),
        genre=genre,
        content=_content(genre, audio, len(genres)),
        index=index_of(base),
    )
    return items.grow(history)


def index_of(table: pa.Table) -> dict[str, int]:
    """Track key -> row, and each track's name key (:func:`name_key`) where it is free."""
    index = {key: row for row, key in enumerate(table["track"].to_pylist())}
    names = pc.binary_join_element_wise(
        pc.utf8_lower(pc.fill_null(table["artist"], "")),
        pc.utf8_lower(pc.fill_null(table["song"], "")),
        SEP,
    )
    for row, key in enumerate(names.to_pylist()):
        index.setdefault(key, row)
    return index


def _genre_index(column: pa.ChunkedArray | pa.Array, genres: tuple[str, ...]) -> I32:
    found = pc.index_in(column, value_set=pa.array(genres, pa.string()))
    return np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), np.int32)


def _content(genre: I32, audio: npt.NDArray[np.float64], n_genres: int) -> F32:
    """Unit rows: genre one-hot, then standardized audio features (unknown: 0)."""
    n = len(genre)
    onehot = np.zeros((n, n_genres), np.float32)
    known = genre >= 0
    onehot[np.flatnonzero(known), genre[known]] = 1.0
    if len(audio):
        mean = np.nanmean(audio, axis=0) if np.isfinite(audio).any() else np.zeros(len(AUDIO))
        std = np.nanstd(audio, axis=0) if np.isfinite(audio).any() else np.ones(len(AUDIO))
        scaled = np.nan_to_num((audio - mean) / np.where(std > 0, std, 1.0)) * AUDIO_WEIGHT
    else:
        scaled = np.zeros((n, len(AUDIO)))
    vectors = np.hstack([onehot, scaled.astype(np.float32)])
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.where(norms > 0, norms, 1.0), np.float32)
