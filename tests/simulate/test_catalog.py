"""Catalogs: the synthetic one, the Kaggle CSV and eventsim's listen counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from backbeat.errors import SourceError
from backbeat.events.schema import MOODS
from backbeat.simulate.catalog import KAGGLE_SCHEMA, load_kaggle_tracks
from backbeat.simulate.synthetic import load_listen_counts, synthetic_catalog

LISTEN_COUNTS = Path("/work/shared/data/catalog/msd10k_listen_counts.txt.gz")


def test_synthetic_catalog_shape_and_long_tail() -> None:
    cat = synthetic_catalog(n_tracks=5_000, n_genres=20, seed=1)
    assert cat.table.schema.equals(KAGGLE_SCHEMA)
    assert cat.n_tracks == 5_000
    assert len(cat.genres) == 20
    pop = np.sort(cat.table["popularity"].to_numpy())[::-1]
    weights = ((pop + 1) / 101.0) ** 3
    assert weights[:500].sum() / weights.sum() > 0.3  # top 10 % of tracks: > 30 % of plays
    per_artist = pc.value_counts(cat.table["artists"]).field("counts").to_numpy()
    assert per_artist.max() >= 5
    assert np.median(per_artist) >= 1
    assert (per_artist > 1).mean() > 0.3
    assert set(np.unique(cat.mood)) <= set(range(len(MOODS)))
    assert len(set(np.unique(cat.mood))) >= 5


def test_synthetic_catalog_is_deterministic() -> None:
    a = synthetic_catalog(n_tracks=300, seed=5).table
    b = synthetic_catalog(n_tracks=300, seed=5).table
    c = synthetic_catalog(n_tracks=300, seed=6).table
    assert a.equals(b)
    assert not a.equals(c)


def test_pick_respects_genre() -> None:
    cat = synthetic_catalog(n_tracks=2_000, n_genres=10, seed=2)
    genre = np.repeat(np.arange(10, dtype=np.int32), 100)
    track = cat.pick(genre, np.random.default_rng(0).random(1_000))
    assert (cat.track_genre[track] == genre).all()


def test_kaggle_csv(tmp_path: Path) -> None:
    header = "," + ",".join(KAGGLE_SCHEMA.names)
    rows = [
        "0,5SuOikwiRyPMVoIQDJUgSV,Gen Hoshino,Comedy,Comedy,73,230666,False,0.676,0.461,1,"
        "-6.746,0,0.143,0.0322,1.01e-06,0.358,0.715,87.917,4,acoustic",
        '1,4qPNDBW1i3p13qLCt0Ki3A,Ben Woodward;Kina,Ghost (Acoustic),"Ghost, Acoustic",55,'
        "149610,True,0.42,0.166,1,-17.235,1,0.0763,0.924,5.56e-06,0.101,0.267,77.489,4,pop",
    ]
    path = tmp_path / "dataset.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    cat = load_kaggle_tracks(path)
    assert cat.n_tracks == 2
    assert cat.genres == ("acoustic", "pop")
    assert cat.artist.to_pylist() == ["Gen Hoshino", "Ben Woodward"]
    assert cat.table["explicit"].to_pylist() == [False, True]
    with pytest.raises(SourceError, match="cannot read"):
        load_kaggle_tracks(tmp_path / "missing.csv")


def test_listen_counts() -> None:
    if not LISTEN_COUNTS.exists():
        pytest.skip(f"{LISTEN_COUNTS} is not available")
    cat = load_listen_counts(LISTEN_COUNTS)
    assert cat.n_tracks == 10_000
    assert len(cat.genres) == 30
    # An artist keeps one genre.
    per_artist = cat.table.group_by("artists").aggregate([("track_genre", "count_distinct")])
    assert per_artist["track_genre_count_distinct"].to_numpy().max() == 1
    pop = cat.table["popularity"].to_numpy()
    assert pop.min() >= 0
    assert pop.max() == 100


def test_listen_counts_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "counts.txt"
    path.write_bytes(b"only\ttwo\n")
    with pytest.raises(SourceError):
        load_listen_counts(path)
