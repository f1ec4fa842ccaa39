"""The dashboard's "For you" panel in Chromium, at laptop (1280) and phone (390) widths.

End to end, as a user runs it: ``backbeat simulate`` writes a small log, ``backbeat stream
--input`` loads it into a store, ``backbeat recommend train --store`` trains and shelves a
model, ``backbeat serve --store --recommend`` serves the dashboard with the recommender; a
listener of the store is chosen in the panel, which shows their recommendations (each with
its reason) and their recent listens, with no console error. Skipped while
``backbeat.recommend`` cannot be imported (the recommender lands on its own branch).

The panel's own behaviour (it picks a listener seen in the live table, follows each commit
and a new model) is checked in this process over the test store and ``conftest.Recommending``.

Next: ``src/backbeat/serve/web/static/foryou.js``, ``tests/support/dashboard.py``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from backbeat.serve.app import WebServer, create_app
from backbeat.serve.hub import CommitHub
from backbeat.sinks import queries as q
from backbeat.sinks.registry import open_reader
from tests.serve.conftest import REASONS, Recommending, Served
from tests.support.dashboard import chromium, csp_violations, missing_browser, server_process

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.integration

SHOWN = """([user, picks]) => {
    const v = window.backbeat && window.backbeat.forYou;
    return v && v.user === user && v.picks >= picks && v.listens > 0;
}"""
WIDER = """width => [...document.querySelectorAll('#foryou, #foryou *')]
    .filter(e => e.getBoundingClientRect().right > width + 0.5 && !e.closest('[hidden]'))
    .slice(0, 8).map(e => `${e.tagName}#${e.id}.${e.className} ${e.getBoundingClientRect().right}`)"""
MODEL = re.compile(r"^model v\d+ · through batch \d+$")
WIDTHS = ((1280, 800), (390, 844))


def _backbeat(*args: str, cwd: Path) -> str:
    """Run ``backbeat ARGS`` as a user does; its output (AssertionError with it unless exit 0)."""
    done = subprocess.run(
        [sys.executable, "-m", "backbeat", *args],
        cwd=cwd, capture_output=True, text=True, timeout=600,
        env={k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
        | {"NO_COLOR": "1", "COLUMNS": "120"},
    )  # fmt: skip
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


def _busiest_listener(store: Path) -> int:
    """The listener with the most of the store's latest listens (asked of the store)."""
    reader = open_reader(str(store))
    try:
        users = [u for u in reader.run(q.Events(limit=500)).column("user_id").to_pylist() if u]
    finally:
        reader.close()
    assert users, "the store has no listens with a user id"
    return max(set(users), key=users.count)


def check_panel(page: Page, user: int, picks: int = 5) -> None:
    """Choose ``user`` in the panel; it shows >= ``picks`` recommendations with a reason and a
    score bar, recent listens and the model, at every width in ``WIDTHS``, no wider than it."""
    page.wait_for_selector("#foryou", state="visible")
    page.fill("#foryou-user", str(user))
    page.press("#foryou-user", "Enter")
    page.wait_for_function(SHOWN, arg=[user, picks], timeout=30_000)
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        page.locator("#foryou").scroll_into_view_if_needed()
        rows = page.locator("#foryou-picks li")
        assert rows.count() >= picks
        reasons = rows.evaluate_all("rs => rs.map(r => r.querySelector('.reason').textContent)")
        assert set(reasons) <= set(REASONS), reasons
        bars = rows.evaluate_all("rs => rs.map(r => r.querySelector('.score span').offsetWidth)")
        assert all(w > 0 for w in bars), bars
        assert rows.first.locator(".song").is_visible()
        assert rows.first.locator(".reason").is_visible()
        assert page.locator("#foryou-listens li").count() > 0
        assert page.locator("#foryou-listens li").first.is_visible()
        assert MODEL.match(page.locator("#foryou-model").inner_text()), page.content()[:500]
        # the panel's own boxes (the whole page's width is test_dashboard_browser's: a chart
        # follows a resize from a ResizeObserver, late on a loaded machine)
        with contextlib.suppress(Exception):
            page.wait_for_function(f"w => !({WIDER})(w).length", arg=width, timeout=15_000)
        assert page.evaluate(WIDER, width) == []


def _watch(page: Page) -> list[str]:
    """Console errors, uncaught page errors and CSP violations of ``page``, as they happen."""
    found = csp_violations(page)
    page.on("console", lambda m: found.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: found.append(str(e)))
    return found


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store loaded from a simulated log by ``backbeat stream``, with a model trained by
    ``backbeat recommend train``."""
    if importlib.util.find_spec("backbeat.recommend") is None:
        pytest.skip("backbeat.recommend cannot be imported yet (the recommender's branch)")
    if reason := missing_browser():
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("recommend")
    _backbeat("simulate", "--out", "events", "--users", "300", "--seed", "7",
              "--start", "2026-03-02T18:00:00Z", "--end", "2026-03-03T00:00:00Z", cwd=root)  # fmt: skip
    _backbeat("stream", "--input", "events", "--store", "store", cwd=root)
    _backbeat("recommend", "train", "--store", "store", cwd=root)
    return root / "store"


def test_the_panel_shows_a_listeners_recommendations_end_to_end(trained_store: Path) -> None:
    user = _busiest_listener(trained_store)
    with (
        server_process("serve", "--store", str(trained_store), "--recommend") as server,
        chromium() as browser,
    ):
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        problems = _watch(page)
        page.goto(server.url)
        check_panel(page, user)
        assert "/api/users/{user_id}/recommendations" in page.evaluate(
            "window.backbeat.capabilities.routes"
        )
    assert not problems, problems


def test_the_panel_picks_a_listener_follows_commits_and_a_new_model(served: Served) -> None:
    if reason := missing_browser():
        pytest.skip(reason)
    recommender = Recommending(served.store_reader)
    hub = CommitHub(served.hub.version)
    web = WebServer(create_app(recommender, hub), "127.0.0.1", 0)
    web.start()
    try:
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            problems = _watch(page)
            page.goto(web.url)
            page.wait_for_function(  # the first listener of the live table, chosen for us
                "() => window.backbeat.forYou.user !== null && window.backbeat.forYou.picks > 0"
            )
            page.wait_for_function(  # the datalist follows the table (which may move on)
                "() => document.querySelectorAll('#foryou-users option').length"
                " === Math.min(50, window.backbeat.listeners().length)"
            )
            options = page.eval_on_selector_all(
                "#foryou-users option", "os => os.map(o => o.value)"
            )
            assert options
            assert str(page.evaluate("window.backbeat.forYou.user")) in options
            check_panel(page, 12345, picks=10)
            assert page.locator("#foryou-model").inner_text() == "model v1 · through batch 7"

            refreshes = page.evaluate("window.backbeat.forYou.refreshes")
            recommender.version = 2
            hub.publish(hub.version + 1)  # a commit: the panel asks again, and shows it
            page.wait_for_function(f"() => window.backbeat.forYou.refreshes > {refreshes}")
            page.wait_for_function(
                "() => document.querySelector('#foryou-model').textContent.startsWith('model v2')"
            )
            recommender.version = None  # no model: the panel says so, and nothing breaks
            page.fill("#foryou-user", "777")
            page.press("#foryou-user", "Enter")
            page.wait_for_function(
                "() => document.querySelector('#foryou-picks-empty').textContent"
                ".includes('recommend train')"
            )
            assert page.locator("#foryou-picks li").count() == 0
    finally:
        web.stop()
    # The 503 is logged by the browser itself ("Failed to load resource"): nothing else.
    assert [p for p in problems if "status of 503" not in p] == [], problems
