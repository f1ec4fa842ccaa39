"""Exact results: every metric and every dead letter equals the independent oracle.

A realistic log gets every kind of trouble (duplicates of both kinds, late and late-but-allowed
events, late duplicates, malformed records of every standard kind). The
engine runs over it with micro-batches of 1, 137 and 10,000 events; whatever the batch cuts,
the stored metrics must equal ``support.oracle`` row for row, and the dead letters must be
exactly the malformed lines (by manifest) plus the late lines (by oracle), once each.

Next: ``test_malformed.py``, ``test_csv.py``, ``test_kill9.py``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from backbeat.sinks import queries as q
from backbeat.sinks.registry import open_reader
from tests.support.eventlog import EventLog, Trouble, generate, write_log
from tests.support.harness import dead_letter_problems, metric_mismatches, run_once
from tests.support.malformed import STANDARD
from tests.support.oracle import SKIPPED_CASES, Expected, compute

TINY = Trouble(
    exact_dups=3,
    key_dups=3,
    late=2,
    late_allowed=3,
    late_dups=1,
    malformed=len(STANDARD),
)


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> tuple[EventLog, Expected]:
    log = write_log(tmp_path_factory.mktemp("medium") / "in", generate(150, 20, seed=11), seed=12)
    return log, compute(log.directory, log.malformed_offsets())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[EventLog, Expected]:
    log = write_log(
        tmp_path_factory.mktemp("tiny") / "in", generate(4, 6, seed=21), seed=22, trouble=TINY
    )
    return log, compute(log.directory, log.malformed_offsets())


def test_the_log_has_every_kind_of_trouble(medium: tuple[EventLog, Expected]) -> None:
    """Guards the fixture itself: the oracle sees exactly what the injector says it injected."""
    log, expected = medium
    kinds = Counter(e.kind for e in log.injected)
    assert {"malformed", "late", "late_allowed", "duplicate"} <= set(kinds)
    assert set(log.counts("malformed")) == set(STANDARD)
    by_file: dict[str, set[int]] = {}
    for e in log.of_kind("late"):
        by_file.setdefault(e.file, set()).add(e.offset)
    assert {k: v for k, v in expected.late.items() if v} == by_file
    dup_files = Counter(e.file for e in log.of_kind("duplicate"))
    assert {k: v for k, v in expected.duplicates.items() if v} == dict(dup_files)
    for name, n in log.lines.items():
        bad = len(log.malformed_offsets().get(name, ()))
        assert expected.valid.get(name, 0) == n - bad
    assert len(expected.final_genre_rows()) > 50


def skipped_rankings(store: Path) -> dict[tuple[str, int, str | None], list[dict[str, Any]]]:
    """The store's answers to the oracle's top-skipped cases (every row)."""
    reader = open_reader(str(store))
    try:
        return {
            (by, least, platform): reader.run(
                q.TopSkipped(by=by, min_plays=least, limit=100_000,
                             keep=q.ListenFilter(platform=platform))
            ).to_pylist()
            for by, least, platform in SKIPPED_CASES
        }  # fmt: skip
    finally:
        reader.close()


def _check_run(log: EventLog, expected: Expected, store: Path, batch: int) -> None:
    report = run_once(log.directory, store, batch)
    assert report["stopped_by"] == "exhausted"
    problems = metric_mismatches(store, expected) + dead_letter_problems(store, log, expected)
    assert not problems, "\n".join(problems)
    for case, got in skipped_rankings(store).items():
        want = expected.skipped[case]
        assert got == want, [(g, w) for g, w in zip(got, want, strict=False) if g != w][:3]
    late = sum(len(v) for v in expected.late.values())
    malformed = len(log.of_kind("malformed"))
    fresh = sum(expected.valid.values()) - late - sum(expected.duplicates.values())
    counts = [report[k] for k in ("events_in", "accepted", "duplicates", "late", "dead")]
    assert counts == [
        sum(log.lines.values()),
        fresh,
        sum(expected.duplicates.values()),
        late,
        malformed,
    ]


@pytest.mark.parametrize("batch", [137, 10_000])
def test_metrics_and_dead_letters_are_exact(
    medium: tuple[EventLog, Expected], tmp_path: Path, batch: int
) -> None:
    _check_run(*medium, tmp_path / "store", batch)


def test_one_event_per_batch_is_exact(tiny: tuple[EventLog, Expected], tmp_path: Path) -> None:
    """Batches of one event: every boundary falls between two events (about 10 s)."""
    _check_run(*tiny, tmp_path / "store", 1)


def test_a_second_run_over_the_same_log_adds_nothing(
    medium: tuple[EventLog, Expected], tmp_path: Path
) -> None:
    log, expected = medium
    run_once(log.directory, tmp_path / "store", 10_000)
    again = run_once(log.directory, tmp_path / "store", 10_000)
    assert (again["events_in"], again["batches"]) == (0, 0)
    problems = metric_mismatches(tmp_path / "store", expected)
    problems += dead_letter_problems(tmp_path / "store", log, expected)
    assert not problems, "\n".join(problems)
