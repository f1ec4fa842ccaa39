"""Malformed records never stop the stream: each becomes a dead letter with the right reason.

Every run goes through ``support.harness.run_once`` (a child process), so an engine that dies
on a record, even in native code, fails the test instead of the session. Valid records around
the bad ones must all be counted (metrics equal the oracle).

Next: ``support/malformed.py`` (the categories and their reason prefixes), ``test_exact.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from backbeat.events import Topic, encode_table
from tests.support.eventlog import EventLog, Trouble, generate, write_log
from tests.support.harness import dead_letter_problems, metric_mismatches, run_once
from tests.support.malformed import CATEGORIES, STANDARD
from tests.support.oracle import compute

QUIET = {
    "exact_dups": 0,
    "key_dups": 0,
    "late": 0,
    "late_allowed": 0,
    "late_dups": 0,
}


def _check(log: EventLog, store: Path, batch: int) -> None:
    expected = compute(log.directory, log.malformed_offsets())
    report = run_once(log.directory, store, batch)
    problems = metric_mismatches(store, expected) + dead_letter_problems(store, log, expected)
    assert not problems, "\n".join(problems)
    assert report["dead"] == len(log.of_kind("malformed"))


def test_ten_thousand_malformed_records(tmp_path: Path) -> None:
    """10,000 bad records of every standard kind (5 of them 1 MB) among ~4,000 good ones."""
    small = tuple(c for c in STANDARD if c != "too_large")
    categories = small * 400 + ("too_large",)
    trouble = Trouble(malformed=10_000, categories=categories)
    log = write_log(tmp_path / "in", generate(120, 20, seed=31), seed=32, trouble=trouble)
    assert len(log.of_kind("malformed")) == 10_000
    assert set(log.counts("malformed")) == set(STANDARD)
    _check(log, tmp_path / "store", 2_500)


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_each_kind_of_malformed_record(tmp_path: Path, category: str) -> None:
    """30 records of one kind among ~200 good ones, in batches of 40 (some clean, some not)."""
    trouble = Trouble(malformed=30, categories=(category,), **QUIET)
    log = write_log(tmp_path / "in", generate(6, 8, seed=41), seed=42, trouble=trouble)
    _check(log, tmp_path / "store", 40)


@pytest.mark.parametrize("category", ["not_json", "json_null"])
@pytest.mark.parametrize("batch", [1, 10_000])
def test_a_partition_that_starts_with_bad_lines(tmp_path: Path, category: str, batch: int) -> None:
    """Every file starts with two bad lines; auth_events.jsonl holds nothing else."""
    tables = generate(2, 3, seed=51)
    log = write_log(tmp_path / "in", tables, seed=52, trouble=None)
    rng = np.random.default_rng(53)
    base = json.loads(encode_table(Topic.PAGE_VIEW, tables[Topic.PAGE_VIEW].slice(0, 1)))
    for topic in tables:
        rec = base
        bad = [(CATEGORIES[category].build(rng, topic, rec), category) for _ in range(2)]
        log.prepend(f"{topic.value}.jsonl", bad, keep_rest=topic.value != "auth_events")
    _check(log, tmp_path / "store", batch)
