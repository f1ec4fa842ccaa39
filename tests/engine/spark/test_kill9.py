"""kill -9 of the Spark driver three times, at random moments after a commit: restarted from
its checkpoint each time, the run ends with every metric and dead letter exact, 0 lost, 0
doubled.

``backbeat stream --engine spark`` runs in a child process group (the Python driver and its
JVM), which gets SIGKILL a random moment after a commit; a restart resumes from the Spark
checkpoint, where the batch in flight may be one the store already holds (it is skipped by
its Spark batch id) or one it does not (it is replayed); the last restart has lost its
checkpoint and resumes from the store's positions. About 2 to 4 minutes on 2 cores.

Next: ``test_differential.py``, ``backbeat.engine.spark.engine``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.eventlog import EventLog
from tests.support.harness import STREAM_CLI, dead_letter_problems, metric_mismatches
from tests.support.kafka import clean_env, run_committed, wait_for_commits
from tests.support.oracle import Expected
from tests.support.stores import ask

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 3


def test_kill9_of_the_driver_loses_nothing_and_doubles_nothing(
    spark: Any, spark_log: tuple[EventLog, Expected], tmp_path: Path
) -> None:
    from backbeat.sinks.queries import BatchTotals

    events, expected = spark_log
    head, rest = STREAM_CLI[:-2], STREAM_CLI[-2:]
    command = [
        *head, "--log-level", "INFO", *rest,
        "--input", str(events.directory), "--store", str(tmp_path / "store"),
        "--engine", "spark", "--master", "local[2]", "--checkpoint", str(tmp_path / "ckpt"),
        "--batch-size", "500",
    ]  # fmt: skip
    output = tmp_path / "stream.log"
    rng = np.random.default_rng(83)
    killed = 0
    for kill in range(KILLS + 1):
        if kill == KILLS:  # the last restart has lost its checkpoint: the store's positions lead
            command[command.index("--checkpoint") + 1] = str(tmp_path / "new-checkpoint")
        seen = output.stat().st_size if output.exists() else 0
        with output.open("ab") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                    env=clean_env(), start_new_session=True)  # fmt: skip
            try:
                if kill < KILLS:
                    wanted = run_committed(output, seen) + 1
                    if wait_for_commits(proc, output, wanted, seen, timeout=300):
                        try:
                            proc.wait(timeout=float(rng.uniform(0.0, 2.0)))
                        except subprocess.TimeoutExpired:
                            os.killpg(proc.pid, signal.SIGKILL)
                code = proc.wait(timeout=600)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
        tail = output.read_bytes()[-3000:].decode(errors="replace")
        assert code in (0, -signal.SIGKILL), f"run {kill} failed ({code}):\n{tail}"
        killed += code == -signal.SIGKILL
        if code == 0:
            break
    assert (killed, code) == (KILLS, 0), "killed three times, then ran to the end"
    assert re.search(rb"Spark UI: http://\S+:\d+", output.read_bytes()), "its address is printed"
    problems = metric_mismatches(tmp_path / "store", expected)
    problems += dead_letter_problems(tmp_path / "store", events, expected)
    assert not problems, "\n".join(problems)
    totals = ask(tmp_path / "store", BatchTotals())[0]
    assert int(totals["events_in"]) == sum(events.lines.values())
