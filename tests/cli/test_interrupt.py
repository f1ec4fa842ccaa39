"""Ctrl-C (SIGINT) and SIGTERM stop `backbeat stream` cleanly: the batch in flight commits."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_cli import _run
from tests.support.stores import all_metrics


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("day")
    code, text = _run(
        "--json", "simulate", "--out", str(out), "--users", "10000", "--seed", "4",
        "--start", "2026-01-05T00:00:00Z", "--end", "2026-01-05T12:00:00Z",
    )  # fmt: skip
    assert code == 0, text
    return out


def _metrics(folder: Path) -> dict[str, list[dict[str, object]]]:
    return all_metrics(folder)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_commits_the_batch_in_flight_and_exits_0(
    day: Path, tmp_path: Path, signum: int
) -> None:
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert _run("stream", "--input", str(day), "--store", str(whole))[0] == 0
    command = [sys.executable, "-m", "backbeat", "--json", "--log-level", "INFO", "stream",
               "--input", str(day), "--store", str(parts), "--batch-size", "2000"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # ready: the stream has committed a batch and goes on
        seen.append(line)
        if "committed batch 2:" in line:
            break
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, "".join(seen) + err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["stopped_by"] == "interrupted"
    assert report["events_in"] > 0
    code, text = _run("--json", "stream", "--input", str(day), "--store", str(parts))
    assert code == 0, text
    assert json.loads(text)["stopped_by"] == "exhausted"
    assert _metrics(parts) == _metrics(whole)
