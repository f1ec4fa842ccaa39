"""NumPy-built event ids equal the plain string formatting, at every digit boundary."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backbeat.simulate.event_ids import event_ids

_EDGES = [0, 1, 9, 10, 99, 100, 9_999, 10_000, 99_999, 100_000, 999_999, 10**6, 10**7 - 1,
          10**7, 10**8 - 1, 10**8, 2**31 - 1, 10**10 - 1, 10**10]  # fmt: skip
PREFIX = "l-k3m9q-"


def _expected(prefix: str, sid: np.ndarray, item: np.ndarray) -> list[str]:
    return [f"{prefix}{s:010d}-{i}" for s, i in zip(sid.tolist(), item.tolist(), strict=True)]


def test_every_digit_count_and_length() -> None:
    edges = np.array(_EDGES, np.int64)
    items = edges[edges < 2**31]
    for sid_value in _EDGES:  # one session id per call, then all mixed
        sid = np.full(len(items), sid_value, np.int64)
        assert event_ids("p-00000-", sid, items).to_pylist() == _expected("p-00000-", sid, items)
    sid, item = np.repeat(edges, len(items)), np.tile(items, len(edges))
    assert event_ids(PREFIX, sid, item).to_pylist() == _expected(PREFIX, sid, item)


def test_empty() -> None:
    out = event_ids("a-zzzzz-", np.zeros(0, np.int64), np.zeros(0, np.int32))
    assert len(out) == 0
    assert out.type == "string"


@pytest.mark.parametrize("prefix", ["l-k3m9-", "l-k3m9qq-", "l-k3m9qx", "l-k3m9\u00e9-"])
def test_the_prefix_is_8_ascii_characters_ending_with_a_dash(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        event_ids(prefix, np.ones(1, np.int64), np.ones(1, np.int32))


@settings(max_examples=60, deadline=None)
@given(
    sid=st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=40),
    item=st.integers(0, 2**31 - 1),
    spread=st.integers(0, 3),
)
def test_matches_formatting(sid: list[int], item: int, spread: int) -> None:
    s = np.array(sid, np.int64)
    i = (np.arange(len(s)) * 10**spread + item) % 2**31
    assert event_ids(PREFIX, s, i.astype(np.int32)).to_pylist() == _expected(PREFIX, s, i)


@settings(max_examples=60, deadline=None)
@given(width=st.integers(1, 8), data=st.data())
def test_fast_path_matches_formatting(width: int, data: st.DataObject) -> None:
    lo = 0 if width == 1 else 10 ** (width - 1)
    item = data.draw(st.lists(st.integers(lo, 10**width - 1), min_size=1, max_size=40))
    n = len(item)
    sid = data.draw(st.lists(st.integers(0, 10**10 - 1), min_size=n, max_size=n))
    s, i = np.array(sid, np.int64), np.array(item, np.int32)
    assert event_ids(PREFIX, s, i).to_pylist() == _expected(PREFIX, s, i)
