"""NumPy-built event ids equal the plain string formatting, at every digit boundary."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from backbeat.simulate.event_ids import event_ids

_EDGES = [0, 1, 9, 10, 99, 100, 9_999, 10_000, 99_999, 100_000, 999_999, 10**6, 10**7 - 1,
          10**7, 10**8 - 1, 10**8, 2**31 - 1]  # fmt: skip


def _expected(letter: str, sid: np.ndarray, item: np.ndarray) -> list[str]:
    return [f"{letter}-{s}-{i}" for s, i in zip(sid.tolist(), item.tolist(), strict=True)]


def test_every_digit_count_and_length() -> None:
    edges = np.array(_EDGES, np.int64)
    for width in range(1, 11):  # one session-id width per call (the fast path), then mixed
        sid = np.repeat(edges[[len(str(e)) == width for e in _EDGES]], len(edges))
        item = np.tile(edges, len(sid) // len(edges)).astype(np.int32)
        assert event_ids("p", sid, item).to_pylist() == _expected("p", sid, item)
    sid, item = np.repeat(edges, len(edges)), np.tile(edges, len(edges)).astype(np.int32)
    assert event_ids("l", sid, item).to_pylist() == _expected("l", sid, item)


def test_empty() -> None:
    out = event_ids("a", np.zeros(0, np.int64), np.zeros(0, np.int32))
    assert len(out) == 0
    assert out.type == "string"


@settings(max_examples=60, deadline=None)
@given(
    sid=st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=40),
    item=st.integers(0, 2**31 - 1),
    spread=st.integers(0, 3),
)
def test_matches_formatting(sid: list[int], item: int, spread: int) -> None:
    s = np.array(sid, np.int64)
    i = (np.arange(len(s)) * 10**spread + item) % 2**31
    assert event_ids("s", s, i.astype(np.int32)).to_pylist() == _expected("s", s, i)


@settings(max_examples=60, deadline=None)
@given(width=st.integers(1, 8), data=st.data())
def test_fast_path_matches_formatting(width: int, data: st.DataObject) -> None:
    lo = 0 if width == 1 else 10 ** (width - 1)
    sid = data.draw(st.lists(st.integers(lo, 10**width - 1), min_size=1, max_size=40))
    item = data.draw(st.lists(st.integers(0, 10**8 - 1), min_size=len(sid), max_size=len(sid)))
    s, i = np.array(sid, np.int64), np.array(item, np.int32)
    assert event_ids("p", s, i).to_pylist() == _expected("p", s, i)
