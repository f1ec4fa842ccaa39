"""The live demo's source catches up: one step per poll on time, every due step when late."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pyarrow as pa

from backbeat.events.schema import Topic
from backbeat.simulate.simulator import SimBatch
from backbeat.transport.inprocess import SimulatorSource
from backbeat.wiring.simulation import _WallClockSimulator


class _Steps:
    """A stand-in simulator: ``n`` steps of one listen each."""

    def __init__(self, n: int) -> None:
        self.n = n

    def batches(self, step_ms: int, start_index: int = 0) -> Iterator[SimBatch]:
        for i in range(start_index, self.n):
            table = pa.table({"i": pa.array([i], pa.int64())})
            yield SimBatch(i, i * step_ms, (i + 1) * step_ms, {Topic.LISTEN: table})


def _polled(source: SimulatorSource) -> list[int]:
    """Rows per poll until the source is exhausted."""
    source.open({})
    sizes: list[int] = []
    while not source.exhausted:
        slices = source.poll(1_000)
        if slices:
            sizes.append(sum(s.table.num_rows for s in slices))  # type: ignore[attr-defined]
    return sizes


def test_one_step_per_poll_while_on_time() -> None:
    source = SimulatorSource(_Steps(5), step_ms=1, steps_per_poll=1, catch_up=lambda: False)
    assert _polled(source) == [1, 1, 1, 1, 1]


def test_a_late_consumer_takes_every_due_step_in_one_poll() -> None:
    due = itertools.chain([True, True, False, True, False], itertools.repeat(False))
    source = SimulatorSource(_Steps(6), step_ms=1, steps_per_poll=1, catch_up=lambda: next(due))
    assert _polled(source) == [3, 2, 1]


def test_behind_compares_the_next_step_with_the_scaled_clock() -> None:
    fast = _WallClockSimulator(_Steps(3), speed=1e9)  # type: ignore[arg-type]
    steps = fast.batches(step_ms=1_000)
    assert not fast.behind()  # nothing released yet
    next(steps)
    assert fast.behind()  # the next step was due a nanosecond later
    slow = _WallClockSimulator(_Steps(3), speed=1.0)  # type: ignore[arg-type]
    steps = slow.batches(step_ms=200)  # at the wall clock's pace: one step per 200 ms
    next(steps)
    assert not slow.behind()
