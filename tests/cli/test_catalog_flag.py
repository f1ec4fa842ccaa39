"""``--catalog FILE`` reaches the simulator: ``simulate`` plays the file's tracks (either
format), ``demo``'s live settings carry them, and a file in neither format is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backbeat import wiring
from backbeat.commands import app
from tests.support.catalogs import write_kaggle_csv, write_listen_counts

runner = CliRunner()
SPAN = ("--start", "2026-01-05T12:00:00Z", "--end", "2026-01-05T13:00:00Z")


def _listens(folder: Path) -> list[dict[str, object]]:
    lines = (folder / "listen_events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _simulate(out: Path, catalog: Path) -> None:
    args = ["--json", "simulate", "--out", str(out), "--users", "1000", "--seed", "4"]
    result = runner.invoke(app, [*args, *SPAN, "--catalog", str(catalog)])
    assert result.exit_code == 0, result.output


def test_simulate_plays_the_kaggle_csv(tmp_path: Path) -> None:
    written = write_kaggle_csv(tmp_path / "dataset.csv", n_tracks=150, n_genres=3)
    _simulate(tmp_path / "out", tmp_path / "dataset.csv")
    listens = _listens(tmp_path / "out")
    assert len(listens) > 50
    assert {r["trackId"] for r in listens} <= set(written["track_id"].to_pylist())
    assert {r["genre"] for r in listens} == set(written["track_genre"].to_pylist())


def test_simulate_plays_eventsim_listen_counts(tmp_path: Path) -> None:
    ids = write_listen_counts(tmp_path / "listen_counts.txt.gz", n_tracks=60)
    _simulate(tmp_path / "out", tmp_path / "listen_counts.txt.gz")
    listens = _listens(tmp_path / "out")
    assert len(listens) > 50
    assert {r["trackId"] for r in listens} <= set(ids)


def test_a_file_in_neither_format_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "tracks.csv"
    bad.write_text("name,year\nx,1999\n")
    result = runner.invoke(app, ["simulate", "--out", str(tmp_path / "out"), "--catalog", str(bad)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "not a catalog" in result.output


@pytest.mark.parametrize("command", ["simulate", "produce", "demo"])
def test_every_simulating_command_takes_the_flag(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert "--catalog" in result.output


def test_the_demo_source_plays_the_file(tmp_path: Path) -> None:
    ids = write_listen_counts(tmp_path / "counts.gz", n_tracks=20)
    settings = wiring.live_settings(users=10, seed=1, catalog=tmp_path / "counts.gz")
    assert settings.catalog is not None
    assert sorted(settings.catalog.track_id.to_pylist()) == ids
