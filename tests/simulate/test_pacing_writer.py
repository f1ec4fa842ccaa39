"""Pacing never exceeds the target rate; coalescing keeps every event in order; the writer
lays out one file per topic."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from backbeat.errors import ConfigError
from backbeat.events.schema import Topic, arrow_schema
from backbeat.simulate.pacing import coalesced, paced
from backbeat.simulate.simulator import SimBatch
from backbeat.simulate.writer import write_run


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _batch(index: int, rows: int) -> SimBatch:
    """A batch with ``rows`` (all-null) page views: pacing only counts rows."""
    tables = {t: arrow_schema(t).empty_table() for t in Topic}
    schema = arrow_schema(Topic.PAGE_VIEW)
    tables[Topic.PAGE_VIEW] = pa.Table.from_arrays(
        [pa.nulls(rows, f.type) for f in schema], names=schema.names
    )
    return SimBatch(index=index, start_ms=index, end_ms=index + 1, tables=tables)


def test_paced_sleeps_to_hold_the_rate() -> None:
    clock = FakeClock()
    batches = [_batch(i, 1_000) for i in range(5)]
    out = list(paced(batches, 2_000, clock=clock, sleep=clock.sleep))
    assert [b.index for b in out] == list(range(5))
    assert clock.now - 100.0 == pytest.approx(2.5)  # 5,000 events at 2,000/s


def test_paced_does_not_sleep_when_behind() -> None:
    clock = FakeClock()
    list(paced([_batch(0, 0), _batch(1, 0)], 10, clock=clock, sleep=clock.sleep))
    assert clock.slept == []
    with pytest.raises(ConfigError):
        list(paced([], 0))


def test_coalesced_keeps_every_event_in_order_in_chunks_of_at_least_min() -> None:
    sizes = [0, 300, 50, 0, 700, 20, 20, 999, 1, 5]
    batches = []
    for i, rows in enumerate(sizes):
        batch = _batch(i, rows)
        page_views = batch.tables[Topic.PAGE_VIEW]
        ts = pa.array(range(sum(sizes[:i]), sum(sizes[: i + 1])), pa.int64())
        batch.tables[Topic.PAGE_VIEW] = page_views.set_column(0, "ts", ts)
        batches.append(batch)
    out = list(coalesced(batches, 400))
    assert [b.n_events for b in out] == [1050, 1039, 6]  # the last one may be short
    assert [(b.index, b.start_ms, b.end_ms) for b in out] == [(0, 0, 5), (5, 5, 8), (8, 8, 10)]
    ts = [t for b in out for t in b.tables[Topic.PAGE_VIEW].column("ts").to_pylist()]
    assert ts == list(range(sum(sizes)))
    assert all(set(b.tables) == set(Topic) for b in out)
    assert list(coalesced([], 10)) == []


def test_writer_creates_every_topic_file(tmp_path: Path) -> None:
    counts = write_run([_batch(0, 0)], tmp_path / "run")
    assert counts == dict.fromkeys(Topic, 0)
    for topic in Topic:
        assert (tmp_path / "run" / f"{topic.value}.jsonl").read_bytes() == b""
