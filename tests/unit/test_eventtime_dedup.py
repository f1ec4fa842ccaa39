"""Event-time and de-dup state: verdicts do not depend on how a stream is cut into batches."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from backbeat.engine.dedup import Deduplicator
from backbeat.engine.eventtime import NO_TS, Watermarks
from backbeat.sinks.base import SEEN_SCHEMA

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


def _apply(stored: pa.Table, added: pa.Table, pruned: dict[str, int]) -> pa.Table:
    """What the store does with a commit's de-dup changes (every partition is ours here)."""
    for topic, cut in pruned.items():
        drop = pc.and_(pc.equal(stored.column("topic"), topic), pc.less(stored.column("ts"), cut))
        stored = stored.filter(pc.invert(drop))
    return pa.concat_tables([stored, added])


def _rows(table: pa.Table) -> list[tuple[object, ...]]:
    return sorted(tuple(r.values()) for r in table.to_pylist())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from("pq"),
            st.sampled_from("abcdef"),
            st.integers(0, 3),
            st.integers(0, 3),
            st.integers(0, 600),
        ),
        max_size=60,
    ),
    st.lists(st.integers(0, 60)),
    st.booleans(),
)
def test_committed_changes_rebuild_the_snapshot(
    rows: list[tuple[str, str, int, int, int]], cuts: list[int], restart: bool
) -> None:
    """Commit after commit, applying only the changes (added keys, per-topic prune cut) to
    the stored keys leaves exactly the full snapshot; batches hold slices of two partitions,
    de-duplicated in one call, with the watermark pruning keys as it rises."""
    open_partitions = {"p": "t", "q": "t"}
    marks_of = Watermarks(LATENESS, {}, {})
    dedup = Deduplicator()
    stored = SEEN_SCHEMA.empty_table()
    bounds = [0, *sorted(c % (len(rows) + 1) for c in set(cuts)), len(rows)]
    for a, b in itertools.pairwise(bounds):
        names, tables, marks = [], [], []
        for partition in "pq":  # one slice per partition, in reading order
            part = _table([r[1:] for r in rows[a:b] if r[0] == partition])
            ts = part.column("ts").to_numpy()
            mark = marks_of.advance("t", partition, ts)
            on_time = ts >= mark
            names += [partition] * int(on_time.sum())
            tables.append(part.filter(pa.array(on_time)))
            marks.append(mark[on_time])
        keep_from = marks_of.watermark("t", open_partitions)
        dedup.fresh_mask(
            "t",
            pa.array(names, pa.string()),
            pa.concat_tables(tables),
            np.concatenate(marks),
            NO_TS if keep_from is None else keep_from,
        )
        if keep_from is not None:
            dedup.prune("t", keep_from)
        added, pruned = dedup.changes()
        dedup.clear_changes()
        stored = _apply(stored, added, pruned)
        assert _rows(stored) == _rows(dedup.snapshot())
        if restart:  # a crash: the next process starts from the stored keys
            dedup = Deduplicator(stored)
    assert dedup.changes()[0].num_rows == 0


def test_forgotten_partitions_leave_the_changes_too() -> None:
    dedup = Deduplicator()
    table = _table([("a", 1, 1, 10), ("b", 2, 1, 10)])
    dedup.fresh_mask("t", pa.array(["p", "q"]), table, np.full(2, NO_TS), NO_TS)
    dedup.forget(["q"])
    added, pruned = dedup.changes()
    assert (added.column("event_id").to_pylist(), pruned) == (["a"], {})
    assert _rows(added) == _rows(dedup.snapshot())
