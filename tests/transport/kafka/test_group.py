"""Two ``backbeat stream`` processes in one consumer group share a store; one is killed -9
mid-way and the survivor takes its partitions over: the results are exact.

Both members run the real CLI (``--group``) on one store folder, which each opens only for
its commits (shared mode). Events are produced after both members hold their half of the
partitions, so the kill lands while both are consuming. The survivor must be given every
partition after the group notices the death (a short session timeout keeps the test quick)
and resume the dead member's ones at the positions it committed: nothing lost, nothing
doubled, every metric equal to the JSONL reference run.

Next: ``test_roundtrip.py`` (the reference and the single-process kill test).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backbeat import wiring
from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.kafka import clean_env, committed, stream_command
from tests.support.stores import all_metrics
from tests.transport.kafka.test_roundtrip import RUN, reference

__all__ = ["reference"]  # the module-scoped fixture, shared with test_roundtrip

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GROUP_CONFIG = {"log_level": "3", "session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}
PARTITIONS = 12  # 4 topics x 3 partitions (the ``topics`` fixture)


def _member(kafka: KafkaSettings, group: str, store: Path, log: Path) -> subprocess.Popen[bytes]:
    command = stream_command(kafka, store, "--group", group, "--batch-size", "2000")
    env = {**clean_env(), "BACKBEAT_KAFKA_EXTRA": json.dumps(GROUP_CONFIG)}
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)


def _assigned(log: Path) -> list[int]:
    """How many partitions each 'assigned' log line of a member listed, in order."""
    text = log.read_text(errors="replace")
    return [len(line.split(", ")) for line in re.findall(r"assigned (.+)", text)]


def _wait(what: str, until: Any, procs: list[subprocess.Popen[bytes]], limit: float) -> None:
    deadline = time.monotonic() + limit
    while not until():
        dead = [p.args for p in procs if p.poll() is not None]
        assert not dead, f"a member exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_survivor_takes_over_a_killed_members_partitions(
    topics: KafkaSettings, reference: tuple[int, dict[str, list[Any]]], tmp_path: Path
) -> None:
    store, group = tmp_path / "store", f"g{uuid.uuid4().hex[:8]}"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    survivor = _member(topics, group, store, logs[0])
    victim = _member(topics, group, store, logs[1])
    members = [survivor, victim]
    try:
        _wait(
            "both members to hold partitions",
            lambda: bool(_assigned(logs[1])) and _assigned(logs[0])[-1:] != [PARTITIONS],
            members,
            90,
        )
        report = wiring.produce_to_kafka(RUN, topics, progress=False, rate=30_000)
        assert report.failed == 0
        _wait("the victim's first commit", lambda: b"committed batch" in logs[1].read_bytes(),
              members, 60)  # fmt: skip
        time.sleep(float(np.random.default_rng(3).uniform(0.0, 0.5)))
        victim.send_signal(signal.SIGKILL)
        assert victim.wait() == -signal.SIGKILL
        halfway = committed(store)[1]
        _wait("every event", lambda: committed(store)[1] >= reference[0], [survivor], 120)
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(timeout=60) == 0, logs[0].read_text()[-3000:]
    finally:
        for proc in members:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert _assigned(logs[0])[-1] == PARTITIONS, "the survivor never got every partition"
    assert halfway > 0, "the victim was killed before anything was committed"
    events, metrics = reference
    assert committed(store) == (events, events), "lost or doubled events"
    stored = all_metrics(store)
    wrong = [name for name, rows in stored.items() if rows != metrics[name]]
    assert not wrong, f"metrics differ from the JSONL run: {wrong}"
