"""kill -9 at ten random moments, restart each time: 0 events lost, 0 doubled, CSV exact.

A log of about a million events (with duplicates, late events and malformed records) is
streamed by ``backbeat stream`` in a child process, which is killed with
SIGKILL at ten seeded random moments and restarted each time, then run to completion. Every
metric must then equal the oracle, every dead letter must be stored exactly once, the batch
statistics must add up to the lines in the files, and ``results.csv`` must hold each final
(window, genre) exactly once with its final count. Progress is printed after every kill
(``pytest -m slow -s`` shows it). About 1.5 to 3 minutes on 2 cores.

Next: ``test_csv.py`` (the commit/append crash window, simulated), ``support/harness.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from backbeat.errors import StoreNotReadyError
from backbeat.sinks.queries import BatchTotals
from tests.support.eventlog import EventLog
from tests.support.harness import (
    STREAM_CLI,
    csv_problems,
    dead_letter_problems,
    metric_mismatches,
)
from tests.support.oracle import Expected
from tests.support.stores import ask, store_sql

pytestmark = pytest.mark.slow

KILLS = 10
BATCH = 25_000


def _command(log: EventLog, store: str, csv_path: Path) -> list[str]:
    """``backbeat stream`` exactly as a user runs it."""
    return [
        *STREAM_CLI,
        "--input",
        str(log.directory),
        "--store",
        str(store),
        "--csv",
        str(csv_path),
        "--batch-size",
        str(BATCH),
    ]


def _progress(store: str) -> tuple[int, int, int]:
    """(batches committed, events committed, bytes consumed) according to the store (zeros
    while it has no file or tables, or a store killed before its tables were created)."""
    if "://" not in store and not (Path(store) / "backbeat.duckdb").exists():
        return 0, 0, 0
    try:
        totals = ask(store, BatchTotals())[0]
    except StoreNotReadyError:
        return 0, 0, 0
    consumed = store_sql(store, "SELECT coalesce(sum(position), 0) AS p FROM meta_partitions")
    return int(totals["batches"]), int(totals["events_in"]), int(consumed[0]["p"])


@pytest.mark.parametrize(
    "backend", ["duckdb", pytest.param("postgresql", marks=pytest.mark.integration)]
)
def test_kill9_loses_nothing_and_doubles_nothing(
    big_log: tuple[EventLog, Expected],
    tmp_path: Path,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    """The same for the embedded store (a folder) and the PostgreSQL store (a database on a
    server: the transaction a kill interrupts is rolled back by the server)."""
    log, expected = big_log
    csv_path = tmp_path / "results.csv"
    store = (
        str(tmp_path / "store") if backend == "duckdb" else request.getfixturevalue("postgres_url")
    )
    command = _command(log, store, csv_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
    total_bytes = sum(p.stat().st_size for p in log.directory.glob("*.jsonl"))
    rng = np.random.default_rng(73)
    killed = 0
    output = tmp_path / "stream.log"
    print(f"\nrunning {' '.join(command[:2])} ...")
    for kill in range(1, KILLS + 1):
        delay = float(rng.uniform(1.2, 4.0))
        with output.open("ab") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
            try:
                code = proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                code = proc.wait()
        assert code in (0, -signal.SIGKILL), f"run {kill} failed ({code}):\n{_tail(output)}"
        killed += code == -signal.SIGKILL
        batches, events, consumed = _progress(store)
        print(
            f"kill {kill:2d} after {delay:.1f}s (exit {code}): {batches} batches, "
            f"{events:,} events, {consumed / total_bytes:.0%} of the input committed"
        )
    started = time.monotonic()
    with output.open("ab") as out:
        done = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=900, check=False
        )
    assert done.returncode == 0, f"final run failed:\n{_tail(output)}"
    batches, events, consumed = _progress(store)
    print(f"final run: {time.monotonic() - started:.1f}s, {batches} batches in all")

    assert killed >= KILLS // 2, f"only {killed} runs were killed before the log ended"
    assert (events, consumed) == (sum(log.lines.values()), total_bytes)
    problems = metric_mismatches(store, expected) + dead_letter_problems(store, log, expected)
    problems += csv_problems(csv_path, expected, complete=True)
    assert not problems, "\n".join(problems)


def _tail(path: Path) -> str:
    return path.read_bytes()[-3000:].decode(errors="replace")
