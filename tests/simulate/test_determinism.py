"""Same seed => same events, whatever the batch size; resume lands on the same batch."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa

from backbeat.events.schema import Topic
from backbeat.simulate import Simulator, SimulatorSettings
from backbeat.simulate.catalog import Catalog
from backbeat.simulate.writer import write_run

from .conftest import MONDAY


def _sim(catalog: Catalog, seed: int = 1, users: int = 300, hours: int = 6) -> Simulator:
    end = MONDAY + timedelta(hours=hours)
    return Simulator(
        SimulatorSettings(users=users, seed=seed, start=MONDAY, end=end, catalog=catalog)
    )


def _concat(sim: Simulator, step_ms: int) -> dict[Topic, pa.Table]:
    return sim.run(step_ms=step_ms)


def test_same_seed_identical_tables(small_catalog: Catalog) -> None:
    a = _concat(_sim(small_catalog), 600_000)
    b = _concat(_sim(small_catalog), 600_000)
    for topic in Topic:
        assert a[topic].equals(b[topic])
    assert a[Topic.LISTEN].num_rows > 0


def test_different_seed_different_tables(small_catalog: Catalog) -> None:
    a = _concat(_sim(small_catalog, seed=1), 3_600_000)
    b = _concat(_sim(small_catalog, seed=2), 3_600_000)
    assert not a[Topic.PAGE_VIEW].equals(b[Topic.PAGE_VIEW])


def test_output_does_not_depend_on_step(small_catalog: Catalog) -> None:
    sim = _sim(small_catalog, hours=3)
    coarse = _concat(sim, 6 * 3_600_000)
    fine = _concat(sim, 60_000)
    odd = _concat(sim, 77_777)
    for topic in Topic:
        assert coarse[topic].equals(fine[topic]), topic
        assert coarse[topic].equals(odd[topic]), topic


def test_batches_cover_their_window_only(small_catalog: Catalog) -> None:
    batches = list(_sim(small_catalog, hours=1).batches(step_ms=300_000))
    assert [b.index for b in batches] == list(range(12))
    for batch in batches:
        assert batch.end_ms - batch.start_ms == 300_000
        for table in batch.tables.values():
            if table.num_rows:
                ts = table["ts"].to_numpy()
                assert batch.start_ms <= ts.min()
                assert ts.max() < batch.end_ms


def test_resume_matches_the_full_run(small_catalog: Catalog) -> None:
    sim = _sim(small_catalog, hours=3)
    full = list(sim.batches(step_ms=600_000))
    resumed = list(sim.resume(9, step_ms=600_000))
    assert [b.index for b in resumed] == list(range(9, 18))
    for a, b in zip(full[9:], resumed, strict=True):
        assert (a.start_ms, a.end_ms) == (b.start_ms, b.end_ms)
        for topic in Topic:
            assert a.tables[topic].equals(b.tables[topic])


def test_writer_output_is_byte_identical(small_catalog: Catalog, tmp_path: Path) -> None:
    counts = write_run(_sim(small_catalog, hours=2).batches(600_000), tmp_path / "a")
    write_run(_sim(small_catalog, hours=2).batches(3_600_000), tmp_path / "b")
    for topic in Topic:
        a = (tmp_path / "a" / f"{topic.value}.jsonl").read_bytes()
        b = (tmp_path / "b" / f"{topic.value}.jsonl").read_bytes()
        assert a == b
        assert a.count(b"\n") == counts[topic]
    assert counts[Topic.LISTEN] > 0
