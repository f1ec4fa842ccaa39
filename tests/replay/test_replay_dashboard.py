"""``backbeat replay my_spotify_data.zip --serve`` in a real browser: the dashboard of that
history shows its top artists and the activity chart filled.

Next: ``test_replay.py`` (the numbers), ``tests/support/dashboard.py`` (Chromium).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.replay.test_replay import DATA, EXTENDED, _extended_sql, _zip
from tests.support.dashboard import chromium, missing_browser, serving

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not EXTENDED.exists(), reason=f"the shared test data is not at {DATA}"),
]
HAS_DATA = """name => {
    const c = window.backbeat && window.backbeat.charts[name];
    return c && c.data.datasets.length > 0 && c.data.datasets.some(d => d.data.some(v => v > 0));
}"""


def test_the_dashboard_of_a_replayed_export(tmp_path: Path) -> None:
    if reason := missing_browser():
        pytest.skip(reason)
    archive = _zip(tmp_path / "my_spotify_data.zip")
    last_hour = duckdb.sql(
        f"WITH p AS ({_extended_sql(EXTENDED)}) SELECT artist, count(*) AS n FROM p "
        "WHERE start_ms // 60000 >= (SELECT max(start_ms) // 60000 - 59 FROM p) "
        "GROUP BY artist ORDER BY n DESC, artist"
    ).fetchall()
    errors: list[str] = []
    replaying = ("replay", str(archive), "--store", str(tmp_path / "store"), "--serve")
    with serving(*replaying) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        for chart in ("topArtists", "hourly"):
            page.wait_for_function(HAS_DATA, arg=chart, timeout=60_000)
        labels = page.evaluate("window.backbeat.charts.topArtists.data.labels")
        assert last_hour[0][0] in labels
    assert not errors
