"""Scale out on one PostgreSQL, for real: two ``backbeat stream --group`` members and one
``backbeat serve`` share a database; one member is killed -9 mid-stream, the other takes its
partitions over; the results are exact, and the dashboard in a real Chromium follows the
commits live.

The group scenario is ``test_group.py``'s (:func:`two_members`), on a ``postgresql://`` store.
The dashboard is opened before any event exists and never reloaded: each member's commit
announces itself (``pg_notify``), serve's watcher hears it (``LISTEN``) and pushes an update
(SSE) that the page shows in its "events total" tile. A ``MutationObserver`` in the page
notes every value the tile took, with the exact total of the update that drew it: it must
have grown at least twice while the members streamed and end equal to the store's total.

Next: ``test_group.py``, ``src/backbeat/sinks/postgres/store.py`` (commits and their notice),
``src/backbeat/serve/hub.py`` (the watcher), ``tests/support/dashboard.py`` (Chromium).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backbeat.sinks.postgres.reader import CHANNEL
from backbeat.sinks.postgres.store import PostgresStore
from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.dashboard import browsing, missing_browser
from tests.support.kafka import committed
from tests.transport.kafka.test_group import assert_exact, two_members
from tests.transport.kafka.test_roundtrip import reference

__all__ = ["reference"]  # the module-scoped fixture, shared with test_roundtrip

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WATCH_TOTAL = """() => {
    const tile = document.querySelector('#kpi-eps [data-field="total"]');
    const shown = (window.__totals = []);
    const note = () => {
        const update = window.backbeat.lastUpdate;
        const exact = update && update.summary ? update.summary.events_total : null;
        const last = shown[shown.length - 1];
        if (!last || last.text !== tile.textContent || last.exact !== exact)
            shown.push({text: tile.textContent, exact});
    };
    new MutationObserver(note).observe(tile, {childList: true, characterData: true, subtree: true});
    note();
}"""
"""Note each value the "events total" tile shows (the page rewrites it at each update)."""
SHOWS_TOTAL = """total => {
    const u = window.backbeat.lastUpdate;
    return u && u.summary && u.summary.events_total === total;
}"""
COMPACT = """n => n >= 10000
    ? new Intl.NumberFormat("en-US", {notation: "compact", maximumFractionDigits: 1}).format(n)
    : new Intl.NumberFormat("en-US").format(n)"""
"""How app.js's ``fmtCompact`` writes a total."""


def _listeners(url: str) -> int:
    """Connections to the database at ``url`` that wait for the commits' ``pg_notify``."""
    with psycopg.connect(url, autocommit=True) as con:
        row = con.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query = %s",
            (f"LISTEN {CHANNEL}",),
        ).fetchone()
    return int(row[0]) if row else 0


def _wait_for_one_listener(url: str, limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while (found := _listeners(url)) != 1:
        assert time.monotonic() < deadline, f"{found} connections LISTEN for the commits, not 1"
        time.sleep(0.05)


def test_members_on_one_postgres_survive_a_kill_and_the_dashboard_follows_live(
    topics: KafkaSettings,
    reference: tuple[int, dict[str, list[Any]]],
    postgres_url: str,
    tmp_path: Path,
) -> None:
    if reason := missing_browser():
        pytest.skip(reason)
    events = reference[0]
    PostgresStore(postgres_url).close()  # the schema: serve refuses a database without one
    errors: list[str] = []
    with (
        two_members(topics, postgres_url, tmp_path) as members,
        browsing("serve", "--store", postgres_url) as (server, browser),
    ):
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(server.url)
        page.wait_for_function("() => window.backbeat && window.backbeat.updates > 0")
        assert committed(postgres_url) == (0, 0), "events before the page was open"
        _wait_for_one_listener(postgres_url)  # serve's watcher: the push path, not a poll
        page.evaluate(WATCH_TOTAL)
        navigations = page.evaluate("() => performance.getEntriesByType('navigation').length")

        halfway = members.kill_one_mid_stream(events)

        total = committed(postgres_url)[0]
        page.wait_for_function(SHOWS_TOTAL, arg=total, timeout=30_000)
        shown: list[dict[str, Any]] = page.evaluate("() => window.__totals")
        tile = page.locator('#kpi-eps [data-field="total"]').inner_text()
        assert tile == page.evaluate(COMPACT, total), (tile, total)
        assert (
            page.evaluate("() => performance.getEntriesByType('navigation').length") == navigations
        )
        assert page.locator("#status").get_attribute("data-state") == "live"

    assert_exact(postgres_url, reference)
    exact = [s["exact"] for s in shown if s["exact"] is not None]
    assert exact == sorted(exact), f"the total went backwards: {exact}"
    streaming = [s for s in shown if s["exact"] is not None and 0 < s["exact"] < total]
    assert len({s["text"] for s in streaming}) >= 2, f"no live numbers on the page: {shown}"
    assert not errors, errors
    print(f"\npage showed {len(shown)} totals; {halfway} events committed at the kill")
