"""Runs with different seeds or settings, streamed into one store, lose nothing as duplicates:
each run numbers its sessions in its own range and tags its event ids (``simulate/scope.py``).

Through the real commands: ``simulate`` three runs (two seeds, and one seed with another
population) to three folders, then ``stream`` them together into one store, and one after
the other into another: every line is accepted, none is a duplicate.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backbeat.commands import app

runner = CliRunner()
SPAN = ("--start", "2026-01-05T12:00:00Z", "--end", "2026-01-05T13:00:00Z")
RUNS = {"seed1": ("--seed", "1", "--users", "1500"), "seed2": ("--seed", "2", "--users", "1500"),
        "seed1-more-users": ("--seed", "1", "--users", "1600")}  # fmt: skip


def _json(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["--json", *args])
    assert result.exit_code == 0, result.output
    out: dict[str, object] = json.loads(result.output)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, int]:
    """Each run's folder and its number of events (lines)."""
    root = tmp_path_factory.mktemp("runs")
    folders = {}
    for name, flags in RUNS.items():
        report = _json("simulate", "--out", str(root / name), *flags, *SPAN)
        folders[root / name] = int(report["events"])  # type: ignore[call-overload]
    return folders


def test_runs_streamed_together_are_all_counted(runs: dict[Path, int], tmp_path: Path) -> None:
    inputs = [arg for folder in runs for arg in ("--input", str(folder))]
    report = _json("stream", *inputs, "--store", str(tmp_path / "store"))
    assert report["duplicates"] == 0
    assert report["accepted"] == report["events_in"] == sum(runs.values()) > 3_000


def test_runs_streamed_one_after_another_are_all_counted(
    runs: dict[Path, int], tmp_path: Path
) -> None:
    for folder, lines in runs.items():
        report = _json("stream", "--input", str(folder), "--store", str(tmp_path / "store"))
        assert report["duplicates"] == 0, folder.name
        assert report["accepted"] == report["events_in"] == lines, folder.name
