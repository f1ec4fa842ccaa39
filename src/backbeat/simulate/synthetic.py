"""A synthetic catalog in the Kaggle tracks schema, for runs without downloaded data, and
eventsim's own catalog (``listen_counts.txt.gz``) completed with synthetic genres and features.

Artists own several tracks (a Zipf-like number each) and mostly stay in one genre; popularity
is long-tailed (a few famous artists, many obscure ones); audio features are drawn per genre so
moods cluster by genre as in real data. Names come from a seeded Faker word pool, so the
catalog is identical for a given seed and builds 20k tracks in well under a second.

Next: ``catalog.py`` indexes the table for sampling.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv
from faker import Faker

from backbeat.errors import SourceError
from backbeat.simulate.catalog import Catalog
from backbeat.simulate.rng import keys_for, uniforms

GENRE_NAMES: Final = (
    "pop", "rock", "hip-hop", "indie", "electronic", "r-n-b", "latin", "country", "jazz",
    "classical", "metal", "folk", "house", "techno", "soul", "reggae", "blues", "punk",
    "k-pop", "ambient", "funk", "disco", "edm", "trance", "gospel", "alt-rock", "dance",
    "acoustic", "chill", "afrobeat", "dubstep", "drum-and-bass", "grunge", "opera", "salsa",
    "samba", "ska", "tango", "trip-hop", "world-music",
)  # fmt: skip
_BASE62: Final = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8
)


def synthetic_catalog(n_tracks: int = 20_000, n_genres: int = 30, seed: int = 0) -> Catalog:
    """Build a deterministic synthetic catalog (see the module docstring)."""
    if n_tracks < 1 or n_genres < 1:
        raise ValueError("synthetic_catalog needs n_tracks >= 1 and n_genres >= 1")
    rng = np.random.default_rng([seed, 0xCA7A])
    fake = Faker("en_US")
    fake.seed_instance(seed)
    genres = [GENRE_NAMES[i] if i < len(GENRE_NAMES) else f"genre-{i}" for i in range(n_genres)]

    # Artists: Zipf-ish track counts, one home genre each, a fame level.
    n_artists = max(1, n_tracks // 6)
    share = 1.0 / np.arange(1, n_artists + 1) ** 0.8
    artist_of = rng.choice(n_artists, size=n_tracks, p=share / share.sum())
    artist_genre = rng.integers(0, n_genres, n_artists)
    fame = rng.beta(0.7, 3.0, n_artists)
    names = _artist_names(fake, n_artists)
    words = np.array(sorted({w.title() for w in fake.words(3000)}), dtype=object)

    stray = rng.random(n_tracks) < 0.1
    genre = np.where(stray, rng.integers(0, n_genres, n_tracks), artist_genre[artist_of])
    album_no = rng.integers(0, 3, n_tracks)
    n_words = rng.integers(1, 5, n_tracks)
    picks = rng.integers(0, len(words), (n_tracks, 4))
    titles = [" ".join(words[picks[i, : n_words[i]]]) for i in range(n_tracks)]
    album_word = words[(artist_of * 7 + album_no * 13) % len(words)]
    albums = [
        f"{a} {['', 'Vol. II', 'Live'][k]}".strip()
        for a, k in zip(album_word, album_no, strict=True)
    ]
    popularity = np.clip(
        np.rint(100 * (0.65 * fame[artist_of] + 0.35 * rng.beta(1.0, 4.0, n_tracks))), 0, 100
    )

    # Genre-level audio character so moods cluster by genre.
    g_energy, g_valence = rng.beta(2, 2, n_genres), rng.beta(2, 2, n_genres)
    g_dance, g_acoustic = rng.beta(2, 2, n_genres), rng.beta(1.5, 2.5, n_genres)
    table = pa.table(
        {
            "track_id": _track_ids(rng, n_tracks),
            "artists": pa.array(np.asarray(names, dtype=object)[artist_of], pa.string()),
            "album_name": pa.array(albums, pa.string()),
            "track_name": pa.array(titles, pa.string()),
            "popularity": pa.array(popularity.astype(np.int64)),
            "duration_ms": pa.array(
                np.clip(rng.lognormal(np.log(210_000), 0.3, n_tracks), 30_000, 1_200_000).astype(
                    np.int64
                )
            ),
            "explicit": pa.array(rng.random(n_tracks) < 0.1),
            "danceability": _around(rng, g_dance[genre]),
            "energy": _around(rng, g_energy[genre]),
            "key": pa.array(rng.integers(0, 12, n_tracks)),
            "loudness": pa.array(np.round(rng.normal(-8, 4, n_tracks).clip(-49, 0), 3)),
            "mode": pa.array(rng.integers(0, 2, n_tracks)),
            "speechiness": pa.array(np.round(rng.beta(1, 12, n_tracks), 4)),
            "acousticness": _around(rng, g_acoustic[genre]),
            "instrumentalness": pa.array(np.round(rng.beta(0.3, 2.5, n_tracks), 4)),
            "liveness": pa.array(np.round(rng.beta(1.5, 8, n_tracks), 4)),
            "valence": _around(rng, g_valence[genre]),
            "tempo": pa.array(np.round(rng.normal(120, 25, n_tracks).clip(40, 220), 3)),
            "time_signature": pa.array(rng.choice([3, 4, 5], n_tracks, p=[0.08, 0.9, 0.02])),
            "track_genre": pa.array(np.asarray(genres, dtype=object)[genre], pa.string()),
        }
    )
    return Catalog.from_table(table)


def features_from_hash(track_ids: pa.ChunkedArray | pa.Array) -> dict[str, pa.Array]:
    """Deterministic audio features (Kaggle columns) for tracks that come without them."""
    ids = track_ids.to_pylist()
    codes = np.array([hash_text(t or "") for t in ids], np.int64)
    u = uniforms(keys_for(0, 0xFEA7, codes), np.zeros(len(ids), np.uint64), 12)
    return {
        "explicit": pa.array(u[:, 0] < 0.1),
        "danceability": pa.array(np.round(u[:, 1], 4)),
        "energy": pa.array(np.round(u[:, 2], 4)),
        "key": pa.array((u[:, 3] * 12).astype(np.int64)),
        "loudness": pa.array(np.round(-30 * u[:, 4], 3)),
        "mode": pa.array((u[:, 5] < 0.6).astype(np.int64)),
        "speechiness": pa.array(np.round(u[:, 6] ** 4, 4)),
        "acousticness": pa.array(np.round(u[:, 7], 4)),
        "instrumentalness": pa.array(np.round(u[:, 8] ** 3, 4)),
        "liveness": pa.array(np.round(u[:, 9] ** 2, 4)),
        "valence": pa.array(np.round(u[:, 10], 4)),
        "tempo": pa.array(np.round(60 + 120 * u[:, 11], 3)),
        "time_signature": pa.array(np.full(len(ids), 4, np.int64)),
    }


def hash_text(text: str) -> int:
    """A stable (not per-process salted) non-negative 62-bit hash of a string."""
    h = 0xCBF29CE484222325
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h >> 2


def _around(rng: np.random.Generator, centre: npt.NDArray[np.float64]) -> pa.Array:
    return pa.array(np.round(np.clip(centre + rng.normal(0, 0.15, len(centre)), 0, 1), 4))


def _track_ids(rng: np.random.Generator, n: int) -> pa.Array:
    chars = _BASE62[rng.integers(0, 62, (n, 22))]
    return pa.array(chars.view("S22").ravel().astype("U22"), pa.string())


def _artist_names(fake: Faker, n: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        i = len(out)
        name = fake.name() if i % 3 else f"The {fake.word().title()} {fake.word().title()}s"
        if name in seen:
            name = f"{name} {i}"
        seen.add(name)
        out.append(name)
    return out


def load_listen_counts(path: str | Path, *, n_genres: int = 30) -> Catalog:
    """Read eventsim's ``listen_counts.txt.gz`` (TSV: trackId, artist, title, seconds, count).

    The file has no genre, album or audio features: the genre comes from a hash of the artist
    name (so an artist keeps one genre), popularity from the log of the listen count, and the
    audio features from a hash of the track id. Text is UTF-8, else ISO-8859-1 (eventsim's).

    Raises:
        SourceError: the file cannot be read or a line does not have five fields.
    """
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip, whatever the name
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise SourceError(f"{path}: cannot read the listen counts: {exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("iso-8859-1")
    names = ["trackId", "artist", "title", "durationSeconds", "listenCount"]
    try:
        t = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types={"durationSeconds": pa.float64(), "listenCount": pa.int64()}
            ),
        )
    except pa.ArrowInvalid as exc:
        raise SourceError(f"{path}: not a listen_counts TSV: {exc}") from exc
    genres = np.array(_genre_names(GENRE_NAMES, n_genres), dtype=object)
    codes = np.array([zlib.crc32((a or "").encode()) for a in t["artist"].to_pylist()], np.uint64)
    count = t["listenCount"].to_numpy().astype(np.float64)
    popularity = np.rint(100 * np.log1p(count) / max(np.log1p(count.max()), 1e-9))
    n = t.num_rows
    table = pa.table(
        {
            "track_id": t["trackId"],
            "artists": t["artist"],
            "album_name": pa.nulls(n, pa.string()),
            "track_name": t["title"],
            "popularity": pa.array(popularity.astype(np.int64)),
            "duration_ms": pa.array(
                np.rint(t["durationSeconds"].to_numpy() * 1000).astype(np.int64)
            ),
            **features_from_hash(t["trackId"]),
            "track_genre": pa.array(genres[codes % np.uint64(len(genres))], pa.string()),
        }
    )
    return Catalog.from_table(table)


def _genre_names(base: tuple[str, ...], n: int) -> list[str]:
    return [base[i] if i < len(base) else f"genre-{i}" for i in range(n)]
