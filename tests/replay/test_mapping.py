"""How plays become listen events: times in every shape, platforms, the catalog, pacing.

Next: ``test_replay.py`` (whole files against an independent SQL).
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pytest

from backbeat.events.schema import Topic
from backbeat.replay.listens import listen_events, user_id_of
from backbeat.replay.source import ReplaySource, Stream, cut
from backbeat.replay.spotify import PLAYS, parse_times


def test_every_time_shape_in_the_wild_is_read_as_utc() -> None:
    shapes = ["2013-07-08T02:44:34Z", "2013-07-08 02:44:34", "2013-07-08T02:44:34",
              "2013-07-08 02:44", "7/8/2013 2:44:34", "07/08/2013 02:44", "2013/07/08 02:44:34",
              "2013-07-08T02:44:34.250Z", " 2013-07-08 02:44:34 "]  # fmt: skip
    got = parse_times(pa.array(shapes)).to_pylist()
    assert got[0] == 1373251474000
    assert got[3] == got[5] == 1373251440000
    assert got[-2] == 1373251474250
    assert all(t is not None for t in got)
    assert parse_times(pa.array(["yesterday", "", None])).to_pylist() == [None, None, None]


def _plays(**columns: list[object]) -> pa.Table:
    n = len(next(iter(columns.values())))
    return pa.table(
        {f.name: pa.array(columns.get(f.name, [None] * n), f.type) for f in PLAYS}, schema=PLAYS
    )


def test_platforms_sessions_and_the_catalog() -> None:
    minute = 60_000
    plays = _plays(
        end_ms=[10 * minute, 14 * minute, 90 * minute, 93 * minute],
        ms_played=[4 * minute, 4 * minute, 3 * minute, 30_000],
        track=["A", "B", "A", "C"],
        artist=["X", "Y", "X", "Z"],
        track_id=["id-a", None, "id-a", None],
        platform=["Android OS 9 API 28", "web_player windows", "iOS 14 (iPhone)", "Sonos Play:1"],
        reason_end=["trackdone", "fwdbtn", "trackdone", "trackdone"],
        skipped=[None, True, False, None],
    )
    catalog = pa.table({"track_id": ["id-a"], "artist_key": ["x"], "song_key": ["a"],
                        "duration": [200.0], "genre": ["jazz"], "mood": ["chill"]})  # fmt: skip
    events = listen_events(plays, user_id_of("me"), catalog)
    rows = events.to_pylist()
    assert [r["platform"] for r in rows] == ["android", "web", "ios", "speaker"]
    assert [r["itemInSession"] for r in rows] == [0, 1, 0, 1]  # a 76-minute gap
    assert rows[0]["sessionId"] == rows[1]["sessionId"] != rows[2]["sessionId"] < 2**31
    assert [r["ts"] for r in rows] == [6 * minute, 10 * minute, 87 * minute, 92.5 * minute]
    assert (rows[0]["genre"], rows[0]["duration"], rows[0]["listenPct"]) == ("jazz", 200.0, 1.0)
    assert rows[0]["completed"] is True
    assert rows[2]["listenPct"] == pytest.approx(0.9)
    assert rows[2]["completed"] is False  # the catalog's duration says it was cut short
    assert (rows[1]["listenPct"], rows[1]["completed"], rows[1]["skipped"]) == (None, False, True)
    assert (rows[3]["genre"], rows[3]["completed"]) == (None, True)  # unknown: reason_end
    assert len({r["eventId"] for r in rows}) == 4
    again = listen_events(plays, user_id_of("me"), catalog)
    assert again.column("eventId") == events.column("eventId")
    assert user_id_of("12345") == 12345
    assert user_id_of("someone") == user_id_of("someone") < 2**53


def test_a_slice_never_splits_events_of_the_same_time() -> None:
    times = np.array([1, 2, 2, 2, 3, 4])
    assert cut(times, 0, 2) == 4
    assert cut(times, 4, 1) == 5
    assert cut(times, 5, 10) == 6


def test_pacing_releases_events_as_the_clock_reaches_them_and_shifts_them() -> None:
    table = pa.table({"ts": pa.array([0, 1_000, 2_000, 400_000], pa.int64())})
    source = ReplaySource([Stream("replay:1", Topic.LISTEN, table)], speed=2_000, shift_ms=10)
    source.open({})
    started = time.monotonic()
    seen: list[int] = []
    while not source.exhausted:
        for piece in source.poll(100):
            assert isinstance(piece.offsets, np.ndarray)
            seen += piece.table.column("ts").to_pylist()  # type: ignore[union-attr]
    assert seen == [10, 1_010, 2_010, 400_010]
    assert time.monotonic() - started >= 0.15  # 400 s of events at x2000
