"""Read-ahead wrappers hand out exactly the wrapped source's slices (or items), in order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import pytest

from backbeat.errors import SourceError
from backbeat.simulate.simulator import Simulator, SimulatorSettings
from backbeat.transport.base import Slice, Source
from backbeat.transport.inprocess import SimulatorSource
from backbeat.transport.prefetch import Prefetching, read_ahead

SETTINGS = SimulatorSettings(
    users=500, seed=2, start=datetime(2026, 1, 5, 12, tzinfo=UTC),
    end=datetime(2026, 1, 5, 15, tzinfo=UTC),
)  # fmt: skip


def _drain(source: Source, positions: Mapping[str, int]) -> list[Slice]:
    source.open(positions)
    out: list[Slice] = []
    while not source.exhausted:
        out.extend(source.poll(1000))
    source.close()
    return out


def _summary(slices: list[Slice]) -> list[tuple[str, int, int]]:
    return [(s.topic, s.next_position, len(s.offsets)) for s in slices]


@pytest.mark.parametrize("worker", ["thread", "process"])
@pytest.mark.parametrize("start", [0, 7])
def test_prefetching_yields_the_same_slices(worker: str, start: int) -> None:
    positions = {"simulator:listen_events": start}
    plain = _drain(SimulatorSource(Simulator(SETTINGS), step_ms=300_000), positions)
    ahead = _drain(
        Prefetching(SimulatorSource(Simulator(SETTINGS), step_ms=300_000), 1000, worker=worker),  # type: ignore[arg-type]
        positions,
    )
    assert _summary(ahead) == _summary(plain)
    assert all(
        a.table.equals(b.table)  # type: ignore[union-attr]
        for a, b in zip(ahead, plain, strict=True)
    )


class _Broken(Source):
    def open(self, positions: Mapping[str, int]) -> None:
        pass

    @property
    def exhausted(self) -> bool:
        return False

    def poll(self, max_events: int) -> list[Slice]:
        raise ValueError("disk on fire")


@pytest.mark.parametrize("worker", ["thread", "process"])
def test_worker_errors_reach_the_engine(worker: str) -> None:
    source = Prefetching(_Broken(), 10, worker=worker)  # type: ignore[arg-type]
    source.open({})

    def poll_until_error() -> None:
        for _ in range(200):
            source.poll(10)

    with pytest.raises((ValueError, SourceError), match="disk on fire"):
        poll_until_error()
    source.close()


def test_read_ahead_yields_every_item_in_order_then_the_error() -> None:
    def items() -> Iterator[int]:
        yield from range(50)
        raise ValueError("disk on fire")

    seen: list[int] = []
    with pytest.raises(ValueError, match="disk on fire"):
        seen.extend(read_ahead(items(), depth=3))
    assert seen == list(range(50))


def test_read_ahead_stops_making_items_when_the_caller_stops() -> None:
    made: list[int] = []

    def items() -> Iterator[int]:
        for i in range(1_000):
            made.append(i)
            yield i

    ahead = read_ahead(items(), depth=2)
    assert [next(ahead) for _ in range(3)] == [0, 1, 2]
    ahead.close()
    deadline = time.monotonic() + 5
    while any(t.name == "backbeat-read-ahead" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the read-ahead thread kept running"
        time.sleep(0.01)
    assert len(made) <= 3 + 2 + 1  # handed out, waiting in the queue, the one in hand
