"""``--catalog FILE``: the format is told by the first line, gzip or not, whatever the name."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from backbeat.errors import SourceError
from backbeat.simulate import catalog_format, load_catalog
from tests.support.catalogs import write_kaggle_csv, write_listen_counts


def test_kaggle_csv_is_detected_and_loaded(tmp_path: Path) -> None:
    path = tmp_path / "dataset.csv"
    written = write_kaggle_csv(path, n_tracks=120, n_genres=4)
    assert catalog_format(path) == "kaggle"
    cat = load_catalog(path)
    assert cat.n_tracks == 120
    assert set(cat.genres) == set(written["track_genre"].to_pylist())
    assert sorted(cat.track_id.to_pylist()) == sorted(written["track_id"].to_pylist())


@pytest.mark.parametrize(
    ("name", "gz"), [("listen_counts.txt.gz", True), ("counts.tsv", False), ("no-suffix", True)]
)
def test_listen_counts_are_detected_and_loaded(tmp_path: Path, name: str, gz: bool) -> None:
    path = tmp_path / name
    ids = write_listen_counts(path, n_tracks=40, gz=gz)
    assert catalog_format(path) == "listen-counts"
    cat = load_catalog(path)
    assert sorted(cat.track_id.to_pylist()) == ids


def test_a_gzipped_kaggle_csv_is_detected(tmp_path: Path) -> None:
    plain = tmp_path / "dataset.csv"
    write_kaggle_csv(plain, n_tracks=30, n_genres=2)
    packed = tmp_path / "dataset.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert catalog_format(packed) == "kaggle"
    assert load_catalog(packed).n_tracks == 30


@pytest.mark.parametrize("content", [b"", b"a,b,c\n1,2,3\n", b"only\ttwo\n", b"\x1f\x8bnot gzip"])
def test_anything_else_is_a_one_line_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "tracks.csv"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=r"tracks\.csv"):
        load_catalog(path)


def test_a_missing_file_names_itself(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"missing\.csv: cannot read the catalog"):
        load_catalog(tmp_path / "missing.csv")
