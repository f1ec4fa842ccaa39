"""Contract invariants every simulated run must satisfy (shared by example and property tests)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from backbeat.events.schema import COMPLETED_PCT, FIELDS, Topic, arrow_schema


def assert_fields(topic: Topic, table: pa.Table) -> None:
    """Required fields present, choices and numeric bounds respected (nulls allowed if optional)."""
    for spec in FIELDS[topic]:
        col = table[spec.name]
        if spec.required:
            assert col.null_count == 0, f"{topic}.{spec.name} has nulls"
        values = col.drop_null()
        if spec.choices is not None and len(values):
            assert pc.all(pc.is_in(values, value_set=pa.array(spec.choices))).as_py(), spec.name
        if spec.lo is not None and len(values):
            assert pc.min(values).as_py() >= spec.lo, spec.name
        if spec.hi is not None and len(values):
            assert pc.max(values).as_py() <= spec.hi, spec.name


def assert_invariants(tables: dict[Topic, pa.Table]) -> None:
    for topic in Topic:
        table = tables[topic]
        assert table.schema.equals(arrow_schema(topic)), topic
        assert_fields(topic, table)
        if not table.num_rows:
            continue
        ts, sid = table["ts"].to_numpy(), table["sessionId"].to_numpy()
        item = table["itemInSession"].to_numpy()
        order = np.lexsort((item, sid, ts))
        assert (order == np.arange(len(ts))).all(), f"{topic} not sorted by (ts, sessionId, item)"
        assert sid.max() < 2**31
        assert sid.min() >= 0
        assert pc.count_distinct(table["eventId"]).as_py() == table.num_rows
        keys = sid.astype(np.int64) * 2**31 + item
        assert len(np.unique(keys)) == len(keys), f"{topic}: (sessionId, item) not unique"
        assert pc.all(pc.match_substring_regex(table["zip"], r"^[0-9]{5}$")).as_py()
        assert pc.all(pc.match_substring_regex(table["state"], r"^[A-Z]{2}$")).as_py()
        hidden = pc.is_in(table["auth"], pa.array(["Guest", "Logged Out"]))
        assert pc.all(pc.invert(pc.and_(hidden, pc.is_valid(table["userId"])))).as_py()

    listens = tables[Topic.LISTEN]
    if listens.num_rows:
        pct = listens["listenPct"].to_numpy()
        completed = listens["completed"].to_numpy(zero_copy_only=False)
        skipped = listens["skipped"].to_numpy(zero_copy_only=False)
        assert ((pct >= 0) & (pct <= 1)).all()
        assert (np.round(pct, 4) == pct).all()
        assert (completed == (pct >= COMPLETED_PCT)).all()
        assert not (skipped & completed).any()
        ms = listens["msPlayed"].to_numpy()
        assert (ms == np.rint(pct * listens["duration"].to_numpy() * 1000)).all()
        rating = listens["rating"].drop_null().to_numpy()
        assert ((rating >= 1) & (rating <= 5) & (rating * 2 == np.rint(rating * 2))).all()

    pages = tables[Topic.PAGE_VIEW]
    songs = pages.filter(pc.equal(pages["page"], "NextSong"))
    cols = ["ts", "sessionId", "itemInSession"]
    assert songs.select(cols).equals(listens.select(cols)), "listens != NextSong page views"
    for topic in (Topic.AUTH, Topic.STATUS_CHANGE):
        sub = tables[topic].select(cols)
        joined = sub.join(pages.select(cols), cols, join_type="inner")
        assert joined.num_rows == sub.num_rows, f"{topic} rows without a page view"
