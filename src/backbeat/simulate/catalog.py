"""The music catalog: an Arrow table in the Kaggle "Spotify Tracks Dataset" schema.

``Catalog`` wraps such a table (sorted by genre) and precomputes what the engine samples
from: each track's primary artist, genre index, mood and a popularity weight, and per-genre
cumulative weights so a vector of (genre, uniform) pairs maps to tracks with one
``searchsorted``. Sources: ``synthetic_catalog`` (``synthetic.py``), ``load_kaggle_tracks``
(the real CSV) and ``load_listen_counts`` (eventsim's ``listen_counts.txt.gz``).

Next: ``users.py`` (who listens) and ``engine.py`` (which track they pick).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from backbeat.errors import SourceError
from backbeat.events.schema import MOODS

I32 = npt.NDArray[np.int32]
F64 = npt.NDArray[np.float64]

KAGGLE_SCHEMA: Final = pa.schema(
    [
        ("track_id", pa.string()),
        ("artists", pa.string()),
        ("album_name", pa.string()),
        ("track_name", pa.string()),
        ("popularity", pa.int64()),
        ("duration_ms", pa.int64()),
        ("explicit", pa.bool_()),
        ("danceability", pa.float64()),
        ("energy", pa.float64()),
        ("key", pa.int64()),
        ("loudness", pa.float64()),
        ("mode", pa.int64()),
        ("speechiness", pa.float64()),
        ("acousticness", pa.float64()),
        ("instrumentalness", pa.float64()),
        ("liveness", pa.float64()),
        ("valence", pa.float64()),
        ("tempo", pa.float64()),
        ("time_signature", pa.int64()),
        ("track_genre", pa.string()),
    ]
)
_MOOD: Final = {m: i for i, m in enumerate(MOODS)}


@dataclass(frozen=True, eq=False)
class Catalog:
    """A catalog table plus the sampling arrays derived from it (build with ``from_table``)."""

    table: pa.Table
    genres: tuple[str, ...]
    track_genre: I32  # genre index per track
    mood: I32  # index into schema.MOODS per track
    duration_s: F64
    artist: pa.Array  # primary artist (first of the ';'-separated list)
    song: pa.Array
    album: pa.Array
    track_id: pa.Array
    genre_names: pa.Array  # one string per genre index
    genre_start: npt.NDArray[np.int64]  # first track of each genre (plus the end)
    alias_prob: F64  # Walker alias tables per genre, over popularity weights
    alias_index: npt.NDArray[np.int64]  # global track index of each slot's alias

    @classmethod
    def from_table(cls, table: pa.Table) -> Catalog:
        """Validate and index a table in ``KAGGLE_SCHEMA`` (extra columns are dropped).

        Raises:
            SourceError: a column is missing, or the table is empty.
        """
        missing = [n for n in KAGGLE_SCHEMA.names if n not in table.column_names]
        if missing:
            raise SourceError(f"catalog: missing column(s) {', '.join(missing)}")
        if table.num_rows == 0:
            raise SourceError("catalog: no tracks")
        table = table.select(KAGGLE_SCHEMA.names).cast(KAGGLE_SCHEMA)
        table = table.filter(pc.greater(table["duration_ms"], 0))
        table = table.sort_by([("track_genre", "ascending"), ("track_id", "ascending")])
        genre_col = table["track_genre"].combine_chunks()
        genres = tuple(str(g) for g in pc.unique(genre_col).to_pylist())
        track_genre = pc.index_in(genre_col, value_set=pa.array(genres)).to_numpy()
        track_genre = track_genre.astype(np.int32)
        pop = np.nan_to_num(table["popularity"].to_numpy().astype(np.float64))
        weight = ((np.clip(pop, 0, 100) + 1.0) / 101.0) ** 3
        bounds = np.searchsorted(track_genre, np.arange(len(genres) + 1)).astype(np.int64)
        prob, alias = np.ones(len(weight)), np.arange(len(weight), dtype=np.int64)
        for g in range(len(genres)):
            lo, hi = int(bounds[g]), int(bounds[g + 1])
            prob[lo:hi], alias[lo:hi] = _alias_table(weight[lo:hi])
            alias[lo:hi] += lo
        artists = pc.utf8_trim_whitespace(
            pc.list_element(pc.split_pattern(pc.fill_null(table["artists"], "Unknown"), ";"), 0)
        )
        return cls(
            table=table,
            genres=genres,
            track_genre=track_genre,
            mood=mood_of(table),
            duration_s=table["duration_ms"].to_numpy().astype(np.float64) / 1000.0,
            artist=artists.combine_chunks(),
            song=pc.fill_null(table["track_name"], "Unknown").combine_chunks(),
            album=table["album_name"].combine_chunks(),
            track_id=table["track_id"].combine_chunks(),
            genre_names=pa.array(genres, pa.string()),
            genre_start=bounds,
            alias_prob=prob,
            alias_index=alias,
        )

    @property
    def n_tracks(self) -> int:
        return int(self.table.num_rows)

    @functools.cached_property
    def fingerprint(self) -> bytes:
        """A digest of every value of the table: equal catalogs, equal fingerprints (a run's
        identity includes it: ``scope.py``)."""
        return _digest(self.table)

    def pick(self, genre: I32, u: F64) -> npt.NDArray[np.int64]:
        """A track in each ``genre``, chosen by popularity with uniforms ``u`` in [0, 1)."""
        start = self.genre_start[genre]
        x = u * (self.genre_start[genre + 1] - start)
        slot = x.astype(np.int64)
        track = start + slot
        stay = (x - slot) < self.alias_prob[track]
        out: npt.NDArray[np.int64] = np.where(stay, track, self.alias_index[track])
        return out


def _digest(table: pa.Table) -> bytes:
    """BLAKE2b of the table's names, types and values (strings, numbers and booleans: the
    table is in ``KAGGLE_SCHEMA``), read within each array's bounds, never from the padding of
    a buffer, which may hold anything."""
    digest = hashlib.blake2b(digest_size=16)
    for name, column in zip(table.column_names, table.columns, strict=True):
        values = column.combine_chunks()
        digest.update(f"{name}:{values.type}:{len(values)}:{values.null_count};".encode())
        if values.null_count:
            digest.update(np.packbits(values.is_null().to_numpy(zero_copy_only=False)).tobytes())
        if pa.types.is_string(values.type):
            values = pc.fill_null(values, "")
            offsets = np.frombuffer(
                values.buffers()[1], np.int32, len(values) + 1, values.offset * 4
            )
            data = values.buffers()[2]
            digest.update((offsets - offsets[0]).tobytes())
            if data is not None:
                digest.update(memoryview(data)[offsets[0] : offsets[-1]])
        else:
            filled = pc.fill_null(values, pa.scalar(0).cast(values.type))
            digest.update(filled.to_numpy(zero_copy_only=False).tobytes())
    return digest.digest()


def _alias_table(weight: F64) -> tuple[F64, npt.NDArray[np.int64]]:
    """Walker/Vose alias table: O(1) sampling proportional to ``weight`` (local indices)."""
    m = len(weight)
    scaled = weight * (m / weight.sum())
    prob = np.ones(m)
    alias = np.arange(m, dtype=np.int64)
    small = [int(i) for i in np.flatnonzero(scaled < 1.0)]
    large = [int(i) for i in np.flatnonzero(scaled >= 1.0)]
    p = scaled.tolist()
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s], alias[s] = p[s], g
        p[g] = p[g] + p[s] - 1.0
        (small if p[g] < 1.0 else large).append(g)
    return prob, alias


def mood_of(table: pa.Table) -> I32:
    """Mood index (into ``schema.MOODS``) per track from its audio features."""

    def col(name: str) -> F64:
        values: F64 = np.nan_to_num(table[name].to_numpy().astype(np.float64), nan=0.5)
        return values

    val, en, dance = col("valence"), col("energy"), col("danceability")
    acoustic, instr = col("acousticness"), col("instrumentalness")
    rules = [
        (en >= 0.8) & (val < 0.35),
        (dance >= 0.75) & (en >= 0.6),
        en >= 0.7,
        val >= 0.65,
        (instr >= 0.5) & (en < 0.5),
        val < 0.3,
        (acoustic >= 0.6) & (val >= 0.4),
    ]
    names = ["angry", "party", "energetic", "happy", "focus", "sad", "romantic"]
    return np.select(rules, [_MOOD[n] for n in names], default=_MOOD["chill"]).astype(np.int32)


def load_kaggle_tracks(path: str | Path) -> Catalog:
    """Read the Kaggle "Spotify Tracks Dataset" CSV (leading unnamed index column allowed).

    Raises:
        SourceError: the file cannot be read or lacks a column.
    """
    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types={n: KAGGLE_SCHEMA.field(n).type for n in KAGGLE_SCHEMA.names},
                true_values=["True", "true"],
                false_values=["False", "false"],
            ),
        )
    except (OSError, pa.ArrowInvalid) as exc:
        raise SourceError(f"{path}: cannot read the Kaggle tracks CSV: {exc}") from exc
    return Catalog.from_table(table)
