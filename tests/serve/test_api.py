"""Every API route and parameter against an oracle over the same events, and bad parameters.

Windows end with the minute of the latest event: ``1h`` = that minute and the 59 before.

Next: ``test_stream.py`` (the live push), ``test_auth.py``, ``test_fuzz.py`` (schemathesis).
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from backbeat.engine.base import EngineSettings
from backbeat.engine.pipeline import Pipeline
from backbeat.serve.app import create_app
from backbeat.serve.hub import CommitHub, latest_batch
from backbeat.sinks.duckdb.store import DuckDBStore
from backbeat.transport.jsonl import JsonlSource, discover
from tests.serve.conftest import Served
from tests.support.oracle import top_skipped

HOUR = "ts >= (SELECT m FROM latest) - 59 * 60000"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def get(client: TestClient, url: str) -> dict:  # type: ignore[type-arg]
    response = client.get(url)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_top_songs_all_time_equal_the_oracle(client: TestClient, served: Served) -> None:
    got = get(client, "/api/top-songs?window=all&limit=15")
    want = served.expect(
        "SELECT artist, song, trackId AS track_id, count(*) AS plays FROM listen_events "
        "GROUP BY ALL ORDER BY plays DESC, artist, song LIMIT 15"
    )
    assert got == {"window": "all", "items": want}


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("genre=pop", "genre = 'pop'"),
        ("platform=ios&level=paid", "platform = 'ios' AND level = 'paid'"),
        ("country=US&genre=rock", "country = 'US' AND genre = 'rock'"),
    ],
)
def test_filtered_top_lists_equal_the_oracle(
    client: TestClient, served: Served, query: str, where: str
) -> None:
    songs = get(client, f"/api/top-songs?window=1h&limit=5&{query}")["items"]
    assert songs == served.expect(
        "SELECT artist, song, trackId AS track_id, count(*) AS plays FROM listen_events "
        f"WHERE {where} AND {HOUR} GROUP BY ALL ORDER BY plays DESC, artist, song LIMIT 5"
    )
    assert songs, "the filter should match something in 3 hours of listens"
    artists = get(client, f"/api/top-artists?window=all&limit=5&{query}")["items"]
    assert artists == served.expect(
        f"SELECT artist, count(*) AS plays FROM listen_events WHERE {where} "
        "GROUP BY ALL ORDER BY plays DESC, artist LIMIT 5"
    )


def test_top_artists_in_the_last_hour(client: TestClient, served: Served) -> None:
    got = get(client, "/api/top-artists?limit=7")  # default window 1h
    assert got["window"] == "1h"
    assert got["items"] == served.expect(
        f"SELECT artist, count(*) AS plays FROM listen_events WHERE {HOUR} "
        "GROUP BY ALL ORDER BY plays DESC, artist LIMIT 7"
    )


@pytest.mark.parametrize(
    ("query", "by", "least", "where"),
    [
        ("window=all&limit=12&min_plays=4", "song", 4, ""),
        ("window=all&limit=50&by=artist", "artist", 20, ""),
        ("window=1h&platform=ios&min_plays=2", "song", 2, f"platform = 'ios' AND {HOUR}"),
    ],
)
def test_top_skipped_equal_the_oracle(
    client: TestClient, served: Served, query: str, by: str, least: int, where: str
) -> None:
    got = get(client, f"/api/top-skipped?{query}")
    limit = int(dict(p.split("=") for p in query.split("&")).get("limit", 10))
    want = top_skipped(served.oracle, by, least, where, "listen_events", limit)
    assert len(want) >= min(limit, 5), "the simulated hours should rank enough items"
    blank = {"song": None, "track_id": None} if by == "artist" else {}
    assert got["items"] == [blank | row for row in want]
    assert (got["by"], got["min_plays"]) == (by, least)


def test_genre_windows_between_two_times(client: TestClient, served: Served) -> None:
    (row,) = served.expect("SELECT m FROM latest")
    start, end = row["m"] - 10 * 60_000, row["m"] - 5 * 60_000
    got = get(client, f"/api/genres/windows?from={_iso(start)}&to={_iso(end)}")["items"]
    want = served.expect(
        "SELECT ts // 60000 * 60000 AS w, genre, count(*) AS plays FROM listen_events "
        "WHERE ts >= ? AND ts < ? GROUP BY ALL ORDER BY w, genre",
        start,
        end,
    )
    assert got == [{"window_start": _iso(r["w"]), "genre": r["genre"], "plays": r["plays"]}
                   for r in want]  # fmt: skip
    default = get(client, "/api/genres/windows")["items"]
    assert {r["window_start"] for r in default} <= {_iso(row["m"] - i * 60_000) for i in range(30)}
    assert len({r["window_start"] for r in default}) == 30


def test_genre_windows_say_which_minutes_are_still_filling(
    client: TestClient, served: Served
) -> None:
    # One listen partition (one file) here: the minute of its latest listen.
    (row,) = served.expect("SELECT max(ts) // 60000 * 60000 AS m FROM listen_events")
    body = get(client, "/api/genres/windows")
    assert body["open_from"] == _iso(row["m"])
    assert body["items"][-1]["window_start"] == _iso(row["m"])  # served, but marked open


def test_open_minutes_start_at_the_listen_partition_furthest_behind(
    tmp_path: Path, served: Served
) -> None:
    (row,) = served.expect("SELECT max(ts) AS ts FROM listen_events")
    behind = row["ts"] - 7 * 60_000
    ahead_dir, behind_dir = tmp_path / "ahead", tmp_path / "behind"
    behind_dir.mkdir()
    shutil.copytree(served.events, ahead_dir)
    with (ahead_dir / "listen_events.jsonl").open("rb") as lines:
        kept = [line for line in lines if json.loads(line)["ts"] <= behind]
    (behind_dir / "listen_events.jsonl").write_bytes(b"".join(kept))
    store = DuckDBStore.at(str(tmp_path / "store"))
    source = JsonlSource(discover([ahead_dir, behind_dir]))
    Pipeline(source, store, settings=EngineSettings(max_future_ms=None)).run()
    reader = store.reader()
    with TestClient(create_app(reader, CommitHub(latest_batch(reader)))) as two:
        body = get(two, "/api/genres/windows")
    store.close()
    assert body["open_from"] == _iso(behind // 60_000 * 60_000)


@pytest.mark.parametrize("by", ["genre", "platform", "country", "mood"])
def test_engagement_by_each_dimension(client: TestClient, served: Served, by: str) -> None:
    got = get(client, f"/api/engagement?by={by}&window=all")
    want = served.expect(
        f"SELECT {by} AS value, count(*) AS listens, "
        "round(count_if(skipped) / count(*), 4) AS skip_rate, "
        "round(count_if(completed) / count(*), 4) AS completion_rate "
        "FROM listen_events GROUP BY ALL ORDER BY listens DESC, value"
    )
    rows = got["items"]  # in the API's order: most listens first, ties by value
    assert got["by"] == by
    assert [(r["value"], r["listens"], r["skip_rate"], r["completion_rate"]) for r in rows] == [
        (w["value"], w["listens"], float(w["skip_rate"]), float(w["completion_rate"])) for w in want
    ]


def test_active_users_per_minute(client: TestClient, served: Served) -> None:
    got = get(client, "/api/users/active?window=15m")["items"]
    want = served.expect(
        "SELECT ts // 60000 * 60000 AS w, count(DISTINCT userId) AS users, "
        "count(DISTINCT sessionId) AS sessions FROM (SELECT ts, userId, sessionId FROM "
        "listen_events UNION ALL SELECT ts, userId, sessionId FROM page_view_events "
        "UNION ALL SELECT ts, userId, sessionId FROM auth_events) "
        "WHERE ts >= (SELECT m FROM latest) - 14 * 60000 GROUP BY ALL ORDER BY w"
    )
    assert got == [{"window_start": _iso(r["w"]), "users": r["users"], "sessions": r["sessions"]}
                   for r in want]  # fmt: skip


def test_pages_auth_states_levels(client: TestClient, served: Served) -> None:
    pages = get(client, "/api/pages?window=all&limit=50")["items"]
    assert pages == served.expect(
        "SELECT page, count(*) AS views FROM page_view_events GROUP BY ALL "
        "ORDER BY views DESC, page LIMIT 50"
    )
    auth = get(client, "/api/auth?window=all")
    (want,) = served.expect(
        "SELECT count(*) AS attempts, count_if(success) AS successes FROM auth_events"
    )
    assert (auth["attempts"], auth["successes"]) == (want["attempts"], want["successes"])
    assert auth["attempts"] > 0
    assert sum(r["attempts"] for r in auth["items"]) == auth["attempts"]
    states = get(client, "/api/geo/states?window=all&limit=5")["items"]
    assert states == served.expect(
        "SELECT state, count(*) AS listens FROM listen_events GROUP BY ALL "
        "ORDER BY listens DESC, state LIMIT 5"
    )
    levels = get(client, "/api/levels?window=all")
    assert sorted(levels["levels"], key=lambda r: r["level"]) == served.expect(
        "SELECT level, count(*) AS listens FROM listen_events GROUP BY ALL ORDER BY level"
    )
    assert sorted(levels["genders"], key=lambda r: r["gender"]) == served.expect(
        "SELECT gender, count(*) AS listens FROM listen_events WHERE gender IS NOT NULL "
        "GROUP BY ALL ORDER BY gender"
    )
    assert all(r["prev_level"] != r["new_level"] for r in levels["changes"])


def test_hourly_activity_today_and_yesterday(client: TestClient, served: Served) -> None:
    got = get(client, "/api/activity/hourly")
    assert got["today"] == "2026-03-03"  # the run goes from 22:00 on the 2nd to 01:00
    assert [r["hour"] for r in got["items"]] == list(range(24))
    want = served.expect(
        "SELECT ts // 86400000 AS day, (ts % 86400000) // 3600000 AS hour, count(*) AS plays "
        "FROM listen_events GROUP BY ALL"
    )
    today = max(r["day"] for r in want)
    for r in want:
        column = "today" if r["day"] == today else "yesterday"
        assert got["items"][r["hour"]][column] == r["plays"], r


def test_filter_values(client: TestClient, served: Served) -> None:
    got = get(client, "/api/filters")
    for name in ("genre", "platform", "country", "mood"):
        want = served.expect(f"SELECT DISTINCT {name} AS v FROM listen_events ORDER BY v")
        assert got[name] == [r["v"] for r in want]


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("", "true"),
        ("artist=an", "contains(lower(artist), 'an')"),
        ("genre=pop&skipped=false", "genre = 'pop' AND NOT skipped"),
        ("mood=chill&min_rating=4", "mood = 'chill' AND rating >= 4"),
        ("platform=android&country=US&skipped=true", "platform = 'android' AND country = 'US' AND skipped"),
    ],
)  # fmt: skip
def test_latest_events_with_filters(
    client: TestClient, served: Served, query: str, where: str
) -> None:
    got = get(client, f"/api/events?limit=20&{query}")["items"]
    want = served.expect(
        f"SELECT ts, artist, song, genre FROM listen_events WHERE {where} "
        "ORDER BY ts DESC, sessionId, itemInSession LIMIT 20"  # the API's order, ties included
    )
    assert len(got) == len(want) > 0
    assert [r["ts"] for r in got] == [_iso(w["ts"]) for w in want]
    assert [(r["artist"], r["song"]) for r in got] == [(w["artist"], w["song"]) for w in want]


def test_summary(client: TestClient, served: Served) -> None:
    got = get(client, "/api/summary")
    (totals,) = served.expect(
        "SELECT (SELECT count(*) FROM listen_events) + (SELECT count(*) FROM page_view_events) "
        "+ (SELECT count(*) FROM auth_events) AS events"
    )
    assert got["events_total"] >= totals["events"]  # + status changes
    (last,) = served.expect(f"SELECT count(*) AS n FROM listen_events WHERE {HOUR}")
    (prev,) = served.expect(
        "SELECT count(*) AS n FROM listen_events WHERE ts >= (SELECT m FROM latest) - 119 * "
        "60000 AND ts < (SELECT m FROM latest) - 59 * 60000"
    )
    assert (got["streams_last_hour"], got["streams_prev_hour"]) == (last["n"], prev["n"])
    assert got["streams_change"] == pytest.approx((last["n"] - prev["n"]) / prev["n"])
    assert got["batch_id"] == served.hub.version > 0
    assert got["dead_letters"] == 0
    assert 0 < got["paid_share"] < 1
    assert 0 < got["skip_rate"] < 1


def test_health_and_metrics(client: TestClient, served: Served) -> None:
    health = get(client, "/health")
    assert health["status"] == "ok"
    assert health["batch_id"] == served.hub.version
    get(client, "/api/top-songs?limit=3")
    get(client, "/api/top-songs?limit=4")
    client.get("/api/top-songs?window=nonsense")
    client.get("/no/such/page")
    values = scrape(client.get("/metrics").text)
    assert (
        values[("backbeat_store_events_in_total", ())]
        == get(client, "/api/summary")["events_total"]
    )
    assert values[("backbeat_store_dead_total", ())] == 0
    assert values[("backbeat_store_batches_total", ())] == served.hub.version
    assert ("backbeat_store_batch_seconds", (("quantile", "0.99"),)) in values
    # requests by route TEMPLATE, method and status; the latency histogram counts each
    top = (("method", "GET"), ("route", "/api/top-songs"), ("status", "200"))
    assert values[("backbeat_http_requests_total", top)] >= 2
    bad = (("method", "GET"), ("route", "/api/top-songs"), ("status", "422"))
    assert values[("backbeat_http_requests_total", bad)] == 1
    assert values[("backbeat_http_requests_total", (("method", "GET"), ("route", "unmatched"),
                                                    ("status", "404")))] == 1  # fmt: skip
    assert values[("backbeat_http_request_seconds_count", (("route", "/api/top-songs"),))] >= 2


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text as {(sample name, sorted labels): value}, read by the client library's
    own parser (a malformed exposition fails here)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = get(client, "/openapi.json")["paths"]
    for route in ("/api/top-songs", "/api/top-artists", "/api/top-skipped", "/api/genres/windows",
                  "/api/engagement", "/api/users/active", "/api/pages", "/api/auth",
                  "/api/levels", "/api/geo/states", "/api/events", "/api/stream",
                  "/api/summary", "/api/activity/hourly", "/api/filters", "/health",
                  "/metrics"):  # fmt: skip
        assert route in paths, route
        assert paths[route]["get"]["description"] or paths[route]["get"]["summary"]
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("/api/top-songs?window=2x", "window"),
        ("/api/top-songs?window=0h", "window"),
        ("/api/top-songs?limit=0", "limit"),
        ("/api/top-songs?limit=abc", "limit"),
        ("/api/top-artists?limit=100000", "limit"),
        ("/api/engagement?by=artist", "by"),
        ("/api/top-skipped?by=genre", "by"),
        ("/api/top-skipped?min_plays=0", "min_plays"),
        ("/api/genres/windows?from=yesterday", "from"),
        ("/api/events?min_rating=9", "min_rating"),
        ("/api/events?skipped=perhaps", "skipped"),
        ("/api/events?limit=-1", "limit"),
        ("/api/events?genre=", "genre"),
        ("/api/geo/states?window=all&limit=x", "limit"),
        ("/api/stream?min_rating=x", "min_rating"),
    ],
)
def test_bad_parameters_get_422_with_the_reason(client: TestClient, url: str, reason: str) -> None:
    response = client.get(url)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["status"] == 422
    assert body["error"].startswith(reason), body


def test_unknown_routes_get_404_in_the_same_shape(client: TestClient) -> None:
    response = client.get("/api/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found", "status": 404}
