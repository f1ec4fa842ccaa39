"""Every table the simulator builds obeys the event contract."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from backbeat.events.schema import Topic

from .conftest import MONDAY, Run
from .invariants import assert_invariants


def test_day_run_obeys_the_contract(day: Run) -> None:
    assert_invariants(day.tables)
    assert day.tables[Topic.LISTEN].num_rows > 1_000


def test_week_run_obeys_the_contract(week: Run) -> None:
    assert_invariants(week.tables)


def test_items_count_on_without_gaps(day: Run) -> None:
    pages = day.tables[Topic.PAGE_VIEW]
    sid, item = pages["sessionId"].to_numpy(), pages["itemInSession"].to_numpy()
    ts = pages["ts"].to_numpy()
    order = np.lexsort((item, sid))
    sid, item, ts = sid[order], item[order], ts[order]
    first = np.r_[True, sid[1:] != sid[:-1]]
    assert (item[~first] == item[np.flatnonzero(~first) - 1] + 1).all()
    # A session begins at item 0 inside the run, or was under way at its start (steady state):
    # then its first event in the run comes within hours of the start, at a later item.
    under_way = first & (item > 0)
    assert 0 < under_way.sum() < first.sum() / 4
    hours_in = (ts[under_way] - int(MONDAY.timestamp() * 1000)) / 3_600_000
    assert hours_in.max() < 8


def test_identity_present_only_when_shown(day: Run) -> None:
    pages = day.tables[Topic.PAGE_VIEW]
    logged_in = pages.filter(pc.equal(pages["auth"], "Logged In"))
    for name in ("userId", "firstName", "lastName", "gender", "registration"):
        assert logged_in[name].null_count == 0
    anonymous = pages.filter(
        pc.is_in(pages["auth"], value_set=pc.cast(["Guest", "Logged Out"], "string"))
    )
    for name in ("userId", "firstName", "lastName", "gender", "registration"):
        assert anonymous[name].null_count == anonymous.num_rows


def test_event_ids_name_topic_run_session_and_item(day: Run) -> None:
    tag = day.sim.scope.tag
    for topic, letter in ((Topic.LISTEN, "l"), (Topic.PAGE_VIEW, "p"), (Topic.AUTH, "a")):
        for row in day.tables[topic].slice(0, 5).to_pylist():
            expected = f"{letter}-{tag}-{row['sessionId']:010d}-{row['itemInSession']}"
            assert row["eventId"] == expected
            assert row["schemaVersion"] == 1
