"""Two ``backbeat stream`` processes in one consumer group share a store; one is killed -9
mid-way and the survivor takes its partitions over: the results are exact.

Both members run the real CLI (``--group``) on one store folder, which each opens only for
its commits (shared mode). Events are produced after both members hold their half of the
partitions, so the kill lands while both are consuming. The survivor must be given every
partition after the group notices the death (a short session timeout keeps the test quick)
and resume the dead member's ones at the positions it committed: nothing lost, nothing
doubled, every metric equal to the JSONL reference run.

:func:`two_members` and :meth:`Members.kill_one_mid_stream` are the scenario, and
:func:`assert_exact` its verdict, for any store: ``test_group_postgres.py`` runs them on one
PostgreSQL with ``backbeat serve`` and the dashboard watching.

Next: ``test_roundtrip.py`` (the reference and the single-process kill test).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
Store = Path | str
"""A store folder, or a store URL (``postgresql://...``)."""


def _member(kafka: KafkaSettings, group: str, store: Store, log: Path) -> subprocess.Popen[bytes]:
    command = stream_command(kafka, store, "--group", group, "--batch-size", "2000")
    env = {**clean_env(), "BACKBEAT_KAFKA_EXTRA": json.dumps(GROUP_CONFIG)}
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)


def _assigned(log: Path) -> list[int]:
    """How many partitions each 'assigned' log line of a member listed, in order."""
    text = log.read_text(errors="replace")
    return [len(line.split(", ")) for line in re.findall(r"assigned (.+)", text)]


def _wait(
    what: str, until: Callable[[], bool], procs: list[subprocess.Popen[bytes]], limit: float
) -> None:
    deadline = time.monotonic() + limit
    while not until():
        dead = [p.args for p in procs if p.poll() is not None]
        assert not dead, f"a member exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@dataclass(frozen=True, slots=True)
class Members:
    """Two members of one group streaming ``kafka``'s topics into ``store``: the survivor
    logs to ``logs[0]``, the victim to ``logs[1]``."""

    kafka: KafkaSettings
    store: Store
    survivor: subprocess.Popen[bytes]
    victim: subprocess.Popen[bytes]
    logs: tuple[Path, Path]

    def kill_one_mid_stream(self, events: int) -> int:
        """Once both hold partitions, produce the run; kill -9 the victim soon after its
        first commit; wait until the store holds ``events`` events and stop the survivor
        (Ctrl-C's SIGTERM). The events committed when the victim died."""
        both = [self.survivor, self.victim]
        _wait(
            "both members to hold partitions",
            lambda: bool(self._assigned(1)) and self._assigned(0)[-1:] != [PARTITIONS],
            both,
            90,
        )
        report = wiring.produce_to_kafka(RUN, self.kafka, progress=False, rate=30_000)
        assert report.failed == 0
        _wait("the victim's first commit", lambda: b"committed batch" in self.logs[1].read_bytes(),
              both, 60)  # fmt: skip
        time.sleep(float(np.random.default_rng(3).uniform(0.0, 0.5)))
        self.victim.send_signal(signal.SIGKILL)
        assert self.victim.wait() == -signal.SIGKILL
        halfway = committed(self.store)[1]
        _wait("every event", lambda: committed(self.store)[1] >= events, [self.survivor], 120)
        self.survivor.send_signal(signal.SIGTERM)
        assert self.survivor.wait(timeout=60) == 0, self.logs[0].read_text()[-3000:]
        assert self._assigned(0)[-1] == PARTITIONS, "the survivor never got every partition"
        assert halfway > 0, "the victim was killed before anything was committed"
        return halfway

    def _assigned(self, member: int) -> list[int]:
        return _assigned(self.logs[member])


@contextmanager
def two_members(kafka: KafkaSettings, store: Store, folder: Path) -> Iterator[Members]:
    """Start two ``backbeat stream --group`` members of a new group (logs in ``folder``);
    kill whatever is left of them on exit."""
    group = f"g{uuid.uuid4().hex[:8]}"
    logs = (folder / "a.log", folder / "b.log")
    survivor = _member(kafka, group, store, logs[0])
    victim = _member(kafka, group, store, logs[1])
    try:
        yield Members(kafka, store, survivor, victim, logs)
    finally:
        for proc in (survivor, victim):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def assert_exact(store: Store, reference: tuple[int, dict[str, list[Any]]]) -> None:
    """Every event committed once, every metric equal to the JSONL run's."""
    events, metrics = reference
    assert committed(store) == (events, events), "lost or doubled events"
    stored = all_metrics(store)
    wrong = [name for name, rows in stored.items() if rows != metrics[name]]
    assert not wrong, f"metrics differ from the JSONL run: {wrong}"


def test_survivor_takes_over_a_killed_members_partitions(
    topics: KafkaSettings, reference: tuple[int, dict[str, list[Any]]], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    with two_members(topics, store, tmp_path) as members:
        members.kill_one_mid_stream(reference[0])
    assert_exact(store, reference)
