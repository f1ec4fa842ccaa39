"""``results.csv``: each (window, genre) written once, only when final, equal to the oracle.

Also the crash window between the store commit and the CSV append: the file is left as a
crash could leave it (the last append missing, half written, or its bytes garbage) and a
restart must repair it.

Next: ``support/harness.py`` (``csv_problems``), ``test_kill9.py`` (real kills).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.eventlog import EventLog, generate, write_log
from tests.support.harness import csv_problems, read_csv, run_once
from tests.support.oracle import Expected, compute
from tests.support.stores import duck_sql


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> tuple[EventLog, Expected]:
    log = write_log(tmp_path_factory.mktemp("csv") / "in", generate(150, 20, seed=61), seed=62)
    return log, compute(log.directory, log.malformed_offsets())


def test_every_final_window_is_written_once_with_its_final_count(
    log: tuple[EventLog, Expected], tmp_path: Path
) -> None:
    events, expected = log
    run_once(events.directory, tmp_path / "store", 137, tmp_path / "results.csv")
    problems = csv_problems(tmp_path / "results.csv", expected, complete=True)
    assert not problems, "\n".join(problems)
    _, rows = read_csv(tmp_path / "results.csv")
    assert rows[0]["window_start"].endswith(":00Z")
    assert any("," in r["genre"] for r in rows)
    assert any('"' in r["genre"] for r in rows)


def test_rows_written_mid_stream_are_already_final(
    log: tuple[EventLog, Expected], tmp_path: Path
) -> None:
    events, expected = log
    for stop in (500, 1_500, 3_000):
        run_once(events.directory, tmp_path / "store", 137, tmp_path / "results.csv", stop)
        problems = csv_problems(tmp_path / "results.csv", expected, complete=False)
        assert not problems, f"after {stop} more events:\n" + "\n".join(problems)


def _last_append(store_dir: Path, csv_path: Path) -> tuple[int, int]:
    """Where the last committed append starts, and where it ends (the file as written)."""
    marks = duck_sql(store_dir, "SELECT mark FROM meta_sinks WHERE key LIKE 'csv:%'")
    assert len(marks) == 1
    return json.loads(marks[0]["mark"])["size_before"], csv_path.stat().st_size


@pytest.mark.parametrize("damage", ["not_written", "half_written", "garbage", "zeros_and_more"])
def test_restart_repairs_a_crash_between_commit_and_append(
    log: tuple[EventLog, Expected], tmp_path: Path, damage: str
) -> None:
    events, expected = log
    csv_path = tmp_path / "results.csv"
    run_once(events.directory, tmp_path / "store", 137, csv_path, max_events=2_000)
    before, after = _last_append(tmp_path / "store", csv_path)
    assert 0 < before < after
    fd = os.open(csv_path, os.O_RDWR)
    try:
        if damage == "not_written":
            os.ftruncate(fd, before)
        elif damage == "half_written":
            os.ftruncate(fd, (before + after) // 2)
        elif damage == "garbage":
            os.pwrite(fd, b"#" * (after - before), before)
        else:
            os.pwrite(fd, b"\0" * (after - before + 100), before)
    finally:
        os.close(fd)
    run_once(events.directory, tmp_path / "store", 137, csv_path)
    problems = csv_problems(csv_path, expected, complete=True)
    assert not problems, "\n".join(problems)
