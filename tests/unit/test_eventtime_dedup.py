"""Event-time and de-dup state: verdicts do not depend on how a stream is cut into batches."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from backbeat.engine.dedup import Deduplicator
from backbeat.engine.eventtime import NO_TS, Watermarks

LATENESS = 100


def _late_in_cuts(ts: list[int], cuts: list[int]) -> list[bool]:
    marks = Watermarks(LATENESS, {}, {})
    out: list[bool] = []
    bounds = [0, *sorted(set(c % (len(ts) + 1) for c in cuts)), len(ts)]
    for a, b in itertools.pairwise(bounds):
        out.extend(marks.late_mask("t", "p", np.asarray(ts[a:b], dtype=np.int64)).tolist())
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=1, max_size=60), st.lists(st.integers(0, 60)))
def test_lateness_is_independent_of_batch_cuts(ts: list[int], cuts: list[int]) -> None:
    expected = []
    running = NO_TS
    for t in ts:
        expected.append(t < running - LATENESS)
        running = max(running, t)
    assert _late_in_cuts(ts, cuts) == expected


def test_topic_watermark_is_the_slowest_partition() -> None:
    marks = Watermarks(10, {}, {})
    marks.late_mask("listen_events", "a", np.array([100, 500]))
    marks.late_mask("listen_events", "b", np.array([300]))
    marks.late_mask("auth_events", "c", np.array([50]))
    assert marks.watermark("listen_events") == 290
    assert marks.watermark("auth_events") == 40
    assert marks.watermark("page_view_events") is None


def _table(rows: list[tuple[str, int, int, int]]) -> pa.Table:
    ids, sessions, items, ts = zip(*rows, strict=True) if rows else ((), (), (), ())
    return pa.table(
        {
            "eventId": pa.array(ids, pa.string()),
            "sessionId": pa.array(sessions, pa.int64()),
            "itemInSession": pa.array(items, pa.int32()),
            "ts": pa.array(ts, pa.int64()),
        }
    )


events = st.lists(
    st.tuples(st.sampled_from("abcdef"), st.integers(0, 3), st.integers(0, 3), st.integers(0, 50)),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(events, st.lists(st.integers(0, 40)), st.booleans())
def test_dedup_is_independent_of_batch_cuts_and_restarts(
    rows: list[tuple[str, int, int, int]], cuts: list[int], restart: bool
) -> None:
    seen_ids: set[str] = set()
    seen_keys: set[tuple[int, int]] = set()
    expected = []
    for eid, s, i, _ in rows:
        expected.append(eid not in seen_ids and (s, i) not in seen_keys)
        seen_ids.add(eid)
        seen_keys.add((s, i))
    dedup = Deduplicator()
    got: list[bool] = []
    bounds = [0, *sorted(set(c % (len(rows) + 1) for c in cuts)), len(rows)]
    for a, b in itertools.pairwise(bounds):
        got.extend(
            dedup.fresh_mask("t", "p", _table(rows[a:b]), np.full(b - a, NO_TS), NO_TS).tolist()
        )
        if restart:  # what a crash + reload does
            dedup = Deduplicator(dedup.snapshot())
    assert got == expected


def test_pruned_keys_are_forgotten_and_large_session_ids_work() -> None:
    dedup = Deduplicator()
    big = 2**62
    first = dedup.fresh_mask(
        "t", "p", _table([("x", big, 1, 10), ("y", 5, 1, 100)]), np.full(2, NO_TS), NO_TS
    )
    assert first.tolist() == [True, True]
    assert dedup.fresh_mask(
        "t", "p", _table([("z", big, 1, 10)]), np.full(1, NO_TS), NO_TS
    ).tolist() == [False]
    dedup.prune("t", 50)
    assert dedup.snapshot().column("event_id").to_pylist() == ["y"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from("abcd"), st.integers(0, 2), st.integers(0, 2), st.integers(0, 400)
        ),
        max_size=40,
    ),
    st.lists(st.integers(0, 40)),
    st.booleans(),
)
def test_horizon_dedup_matches_brute_force_under_any_cuts(
    rows: list[tuple[str, int, int, int]], cuts: list[int], restart: bool
) -> None:
    """Duplicate = an earlier on-time row shares eventId or key AND its ts >= this row's mark."""
    expected: list[bool | None] = []  # None = late
    running, earlier = NO_TS, []
    for eid, s, i, ts in rows:
        mark = running - LATENESS
        running = max(running, ts)
        if ts < mark:
            expected.append(None)
            continue
        dup = any((e == eid or (es, ei) == (s, i)) and ets >= mark for e, es, ei, ets in earlier)
        expected.append(not dup)
        earlier.append((eid, s, i, ts))

    marks_of = Watermarks(LATENESS, {}, {})
    dedup = Deduplicator()
    got: list[bool | None] = []
    bounds = [0, *sorted(c % (len(rows) + 1) for c in set(cuts)), len(rows)]
    for a, b in itertools.pairwise(bounds):
        part = _table(rows[a:b])
        marks = marks_of.advance("t", "p", part.column("ts").to_numpy())
        on_time = part.column("ts").to_numpy() >= marks
        keep_from = marks_of.watermark("t")
        assert keep_from is not None or b == a
        fresh = dedup.fresh_mask(
            "t", "p", part.filter(pa.array(on_time)), marks[on_time], keep_from or NO_TS
        )
        it = iter(fresh.tolist())
        got.extend(next(it) if ok else None for ok in on_time.tolist())
        if keep_from is not None:
            dedup.prune("t", keep_from)
        if restart:
            dedup = Deduplicator(dedup.snapshot())
    assert got == expected
