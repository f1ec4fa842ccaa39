"""The dashboard in a real browser against a real ``backbeat demo``: charts render with data,
a filter changes the live table without a reload and lands in the URL, and the page asks
nothing of any host but the server it came from, within its Content-Security-Policy. With a
token (a base64 one, the kind browsers' cookies used to mangle), the login form leads to the
dashboard and sign-out ends the session.

``BACKBEAT_TEST_DASHBOARD=http://host:port/`` uses a server that is already running instead of
starting a demo. A store that answers only the rankings (``conftest.Restricted``, served in
this process) shows those panels and hides the others.

Next: ``tests/support/dashboard.py`` (demo + Chromium helpers).
"""

from __future__ import annotations

import contextlib
import os
import time
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from backbeat.serve.app import WebServer, create_app
from backbeat.serve.hub import CommitHub
from tests.serve.conftest import Restricted, Served
from tests.support.dashboard import (
    CHARTS,
    CHARTS_HAVE_DATA,
    chromium,
    csp_violations,
    missing_browser,
    running_demo,
    server_process,
    settle,
    wait_for_data,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.integration

EXTERNAL = os.environ.get("BACKBEAT_TEST_DASHBOARD")
"""Read at import: the autouse fixture hides ``BACKBEAT_*`` from each test."""
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

ROWS_MATCH = """genre => {
    const rows = [...document.querySelectorAll('#events tr')];
    return rows.length > 0 && rows.every(r => r.dataset.genre === genre);
}"""
BUSIEST_GENRE = """() => {
    const seen = {};
    for (const r of document.querySelectorAll('#events tr')) seen[r.dataset.genre] = (seen[r.dataset.genre] || 0) + 1;
    return Object.entries(seen).sort((a, b) => b[1] - a[1])[0][0];
}"""
PUSHED_AFTER = """([before, genre]) => {
    const b = window.backbeat;
    return b.updates > before && b.lastUpdate.events.length > 0
        && b.lastUpdate.events.every(e => e.genre === genre);
}"""


@pytest.fixture
def dashboard_url(tmp_path: Path):
    if reason := missing_browser():
        pytest.skip(reason)
    if EXTERNAL:
        yield EXTERNAL
        return
    with running_demo(tmp_path / "store", users=2000, duration=120) as url:
        yield url


def test_dashboard_shows_data_filters_live_and_stays_local(
    dashboard_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    requests: list[str] = []
    chart_reads: list[float] = []  # when the page asked for /api/top-songs
    errors: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.on(
            "request",
            lambda r: (
                chart_reads.append(time.monotonic())
                if urlsplit(r.url).path == "/api/top-songs"
                else None
            ),
        )
        page.on("pageerror", lambda e: errors.append(str(e)))
        violations = csp_violations(page)
        page.goto(dashboard_url)
        wait_for_data(page)

        # Charts: one canvas each, drawn at a real size, with data.
        sizes = page.eval_on_selector_all("canvas", "cs => cs.map(c => [c.id, c.width, c.height])")
        assert len(sizes) == len(CHARTS), sizes
        assert all(w > 0 and h > 0 for _, w, h in sizes), sizes
        lengths = page.evaluate(
            "names => names.map(n => window.backbeat.charts[n].data.datasets[0].data.length)",
            list(CHARTS),
        )
        assert all(n > 0 for n in lengths), dict(zip(CHARTS, lengths, strict=True))
        assert page.locator("#status").get_attribute("data-state") == "live"
        assert page.locator("#kpi-streams [data-field=value]").inner_text() != "—"
        skipped = _skipped_rows(page)
        assert all(name and num.endswith("%") for name, num, _ in skipped), skipped

        # A filter: the table follows live, without a reload, and the URL keeps it.
        page.evaluate("window.__marker = 'same page'")
        navigations = page.evaluate("performance.getEntriesByType('navigation').length")
        page.wait_for_function(
            "() => document.querySelector('select[name=genre]').options.length > 1"
        )
        genre = page.evaluate(BUSIEST_GENRE)
        updates = page.evaluate("window.backbeat.updates")
        page.select_option("select[name=genre]", genre)
        page.wait_for_function(ROWS_MATCH, arg=genre, timeout=30_000)
        page.wait_for_function(PUSHED_AFTER, arg=[updates, genre], timeout=30_000)
        pushed = page.evaluate("window.backbeat.lastUpdate.events.length")
        page.wait_for_function(ROWS_MATCH, arg=genre, timeout=5_000)
        assert page.evaluate("window.__marker") == "same page"
        assert page.evaluate("performance.getEntriesByType('navigation').length") == navigations
        assert parse_qs(urlsplit(page.url).query).get("genre") == [genre]
        stream_urls = [u for u in requests if urlsplit(u).path == "/api/stream"]
        assert parse_qs(urlsplit(stream_urls[-1]).query).get("genre") == [genre], stream_urls

        settle(page)
        page.screenshot(path=str(tmp_path / "dashboard.png"))
        assert (tmp_path / "dashboard.png").stat().st_size > 10_000

        # Charts follow the pushed batches, but at most once every 2 s (slack for the clock).
        gaps = [b - a for a, b in pairwise(chart_reads)]
        assert len(chart_reads) >= 2, chart_reads
        assert min(gaps) > 1.8, gaps

        # A phone: one column, nothing wider than the screen (once the charts have followed
        # the new width: Chart.js resizes from a ResizeObserver, later on a busy machine).
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        page.set_viewport_size({"width": 390, "height": 844})
        with contextlib.suppress(PlaywrightTimeout):  # the assertion says how wide it stayed
            page.wait_for_function(
                "() => document.documentElement.scrollWidth <= 390", timeout=15_000
            )
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert all(0 < width <= 390 for _, _, width in _skipped_rows(page)), _skipped_rows(page)
        page.screenshot(path=str(tmp_path / "dashboard-phone.png"), full_page=True)

        # The filter comes back with the page.
        page.reload()
        wait_for_data(page)
        assert page.eval_on_selector("select[name=genre]", "s => s.value") == genre
        page.wait_for_function(ROWS_MATCH, arg=genre, timeout=30_000)

    outside = [u for u in requests if urlsplit(u).scheme != "data"]
    outside = [u for u in outside if urlsplit(u).hostname not in LOCAL_HOSTS]
    assert not outside, outside
    assert not errors, errors
    assert not violations, violations  # the Content-Security-Policy lets the page work
    print(
        f"\ndashboard: {len(requests)} requests, {pushed} pushed {genre!r} events, "
        f"{time.monotonic() - started:.1f}s in the browser"
    )


SKIPPED_ROWS = """() => [...document.querySelectorAll('#skipped li:not(.none)')].map(li => [
    li.querySelector('.name').textContent, li.querySelector('.num').textContent,
    li.getBoundingClientRect().right])"""


def _skipped_rows(page: Page) -> list[list[Any]]:
    """The "Most skipped" panel's rows once it has some: (name, skip rate, right edge px)."""
    page.wait_for_function(
        "() => document.querySelectorAll('#skipped li:not(.none)').length > 0", timeout=30_000
    )
    rows: list[list[Any]] = page.evaluate(SKIPPED_ROWS)
    return rows


BASE64_TOKEN = "Zm9v/YmFy+YmF6=="
"""``/``, ``+`` and ``=``: what ``openssl rand -base64`` tokens contain."""


def test_a_base64_token_logs_in_and_the_dashboard_loads_data(idle_store: Path) -> None:
    if reason := missing_browser():
        pytest.skip(reason)
    env = {"BACKBEAT_API_TOKEN": BASE64_TOKEN}
    errors: list[str] = []
    with (
        server_process("serve", "--store", str(idle_store), env=env) as server,
        chromium() as browser,
    ):
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        violations = csp_violations(page)
        page.goto(server.url)
        page.wait_for_url(f"{server.url}login")
        page.fill("input[name=token]", BASE64_TOKEN)
        page.click("button[type=submit]")
        page.wait_for_url(server.url)
        wait_for_data(page)
        assert page.locator("#status").get_attribute("data-state") == "live"

        [cookie] = [c for c in page.context.cookies() if c["name"] == "backbeat_session"]
        assert BASE64_TOKEN not in cookie["value"]
        assert cookie["httpOnly"]
        assert cookie["sameSite"] == "Strict"
        assert cookie["expires"] > time.time() + 3600  # it expires (in 12 h by default)

        page.goto(f"{server.url}docs")  # Swagger UI runs within its policy too
        page.wait_for_selector(".swagger-ui .info .title")
        page.goto(server.url)
        page.click("[data-signout] button")
        page.wait_for_url(f"{server.url}login")
        page.goto(server.url)
        page.wait_for_url(f"{server.url}login")  # the session is over
    assert not violations, violations
    assert not errors, errors


HIDDEN = ("/api/summary", "/api/stream", "/api/activity/hourly", "/api/engagement",
          "/api/geo/states", "/api/levels", "/api/events", "/api/top-skipped")  # fmt: skip
"""Routes a store of rankings only does not answer: their panels must be hidden."""
RANKED_CHARTS = ("topSongs", "topArtists", "genres")


def test_a_store_of_rankings_only_hides_what_it_cannot_show(served: Served) -> None:
    """The panels of the routes the store answers show data; the others are hidden and never
    asked for (no 501 in the console, no error, nothing waiting forever)."""
    if reason := missing_browser():
        pytest.skip(reason)
    app = create_app(Restricted(served.store_reader), CommitHub(served.hub.version))
    web = WebServer(app, "127.0.0.1", 0)
    web.start()
    asked: list[str] = []
    console: list[str] = []
    errors: list[str] = []
    try:
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.on("request", lambda r: asked.append(urlsplit(r.url).path))
            page.on(
                "console",
                lambda m: console.append(m.text) if m.type in ("error", "warning") else None,
            )
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{web.url}?genre=pop&artist=x")  # filters it cannot apply: dropped
            page.wait_for_function(CHARTS_HAVE_DATA, arg=list(RANKED_CHARTS), timeout=30_000)
            page.wait_for_function("() => window.backbeat.refreshes > 0")

            for route in ("/api/top-songs", "/api/top-artists", "/api/genres/windows"):
                assert page.locator(f'[data-route="{route}"]').first.is_visible(), route
            for route in HIDDEN:
                panels = page.locator(f'[data-route="{route}"]')
                assert panels.count() > 0, route
                for i in range(panels.count()):
                    assert panels.nth(i).is_hidden(), route
            assert page.locator("#filters").is_hidden()
            assert page.locator("#status").is_hidden()
            assert parse_qs(urlsplit(page.url).query) == {}  # the dropped filters left the URL
            assert page.evaluate("window.backbeat.capabilities.filtered") == []
            songs = page.evaluate("window.backbeat.charts.topSongs.data.labels.length")
            assert songs > 0
    finally:
        web.stop()
    answered = {"/api/capabilities", "/api/top-songs", "/api/top-artists", "/api/genres/windows"}
    api_asked = {path for path in asked if path.startswith("/api/")}
    assert api_asked == answered, api_asked
    assert not console, console
    assert not errors, errors
