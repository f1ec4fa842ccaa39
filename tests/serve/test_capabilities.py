"""A store that answers only some queries: the routes that need the others answer 501 with
one line, the ranked ones answer as over the full store, ``/api/capabilities`` says which is
which, and the web process's reader passes it all through.

The store is a real one behind a reader that answers only the three ranked queries and no
listen filter (``conftest.Restricted``, a store of aggregates such as the MongoDB reader).
Routes are enumerated from the OpenAPI schema, so a new route is checked without being named.

Next: ``test_dashboard_browser.py`` (the dashboard hiding what such a store cannot show),
``backbeat.serve.routes.needs``.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backbeat.errors import UnsupportedQueryError
from backbeat.serve.app import WebServer, create_app
from backbeat.serve.hub import CommitHub, latest_batch
from backbeat.serve.remote import ReadService, RemoteReader
from backbeat.sinks import queries as q
from tests.serve.conftest import RANKED, Restricted, Served

ANSWERED = ("/api/top-songs", "/api/top-artists", "/api/genres/windows")
ALWAYS = ("/health", "/api/capabilities", "/metrics")
FILTERED = (
    "/api/top-songs?genre=pop",
    "/api/top-songs?window=all&artist=a&limit=3",
    "/api/top-artists?platform=ios",
    "/api/top-artists?skipped=true",
)


def _operations(client: TestClient) -> dict[str, Any]:
    """Every path the app documents, and its operations (all GET today)."""
    paths: dict[str, Any] = client.get("/openapi.json").json()["paths"]
    assert all(set(methods) == {"get"} for methods in paths.values()), paths
    return paths


@pytest.fixture(scope="module")
def ranked(served: Served) -> Iterator[TestClient]:
    app = create_app(Restricted(served.store_reader), CommitHub(served.hub.version))
    with TestClient(app) as client:
        yield client


def _refused(client: TestClient, path: str) -> str:
    """The reason of the 501 that ``path`` must answer."""
    response = client.get(path)
    assert response.status_code == 501, (path, response.text)
    body = response.json()
    assert body == {"error": body["error"], "status": 501}, body
    reason: str = body["error"]
    assert reason.strip(), path
    assert "\n" not in reason, (path, reason)
    return reason


def test_every_route_needing_another_query_answers_501_with_one_line(ranked: TestClient) -> None:
    refused = [p for p in sorted(_operations(ranked)) if p not in (*ANSWERED, *ALWAYS)]
    assert len(refused) >= 12, refused
    assert {"/api/stream", "/api/summary", "/api/levels"} <= set(refused)
    for path in refused:
        reason = _refused(ranked, path)
        assert reason.startswith("this store does not answer '"), (path, reason)
        assert "(it answers: genre-windows, top-artists, top-songs)" in reason, (path, reason)
    # /metrics always answers: the server's own requests, the store's counters if it keeps them
    metrics = ranked.get("/metrics")
    assert metrics.status_code == 200
    assert "backbeat_http_requests_total" in metrics.text
    assert "backbeat_store_" not in metrics.text
    # A route asking several queries names every one it lacks, and runs none of them.
    assert "'levels', 'genders', 'level-changes'" in _refused(ranked, "/api/levels")


def test_the_ranked_routes_answer_as_over_the_full_store(
    ranked: TestClient, client: TestClient
) -> None:
    for path in (*ANSWERED, "/api/top-songs?window=all&limit=20", "/api/top-artists?window=5m"):
        response = ranked.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.json() == client.get(path).json(), path
        assert response.json()["items"], path


def test_a_listen_filter_it_cannot_apply_is_501_not_unfiltered_figures(
    ranked: TestClient, client: TestClient
) -> None:
    for path in FILTERED:
        assert client.get(path).status_code == 200, path  # the full store filters
        reason = _refused(ranked, path)
        assert "with listen filters" in reason, reason
        assert "keeps no raw listens" in reason, reason
    assert "(genre)" in _refused(ranked, "/api/top-songs?genre=pop")
    for path in ("/api/events?genre=pop", "/api/stream?genre=pop"):
        _refused(ranked, path)


def test_health_says_the_service_is_up(ranked: TestClient) -> None:
    response = ranked.get("/health")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "batch_id": None, "last_commit_age_s": None}


def test_capabilities_name_the_queries_and_the_routes_that_answer(
    ranked: TestClient, client: TestClient
) -> None:
    assert ranked.get("/api/capabilities").json() == {
        "queries": sorted(RANKED),
        "filtered": [],
        "routes": sorted((*ANSWERED, *ALWAYS)),
    }
    full = client.get("/api/capabilities").json()
    stored = (q.name_of(kind) for kind in q.QUERIES)  # a store answers all but a recommender's
    assert full["queries"] == sorted(name for name in stored if name not in q.RECOMMENDER)
    assert full["filtered"] == ["events", "top-artists", "top-skipped", "top-songs"]
    operations = _operations(client)
    assert full["routes"] == sorted(
        path
        for path, methods in operations.items()
        if set(methods["get"]["x-queries"]["needs"]) <= set(full["queries"])
    )
    assert len(full["routes"]) == len(operations) - 3  # all but the recommender's three


def test_every_route_documents_the_queries_it_needs(ranked: TestClient) -> None:
    """``x-queries`` in each operation; a route answers exactly when its needs are met."""
    operations = _operations(ranked)
    answering = set(ranked.get("/api/capabilities").json()["routes"])
    for path, methods in operations.items():
        needs = methods["get"]["x-queries"]["needs"]
        assert (path in answering) == (set(needs) <= RANKED), (path, needs)


def test_the_web_process_reader_passes_what_the_store_answers_through(
    served: Served, tmp_path: Path
) -> None:
    restricted = Restricted(served.store_reader)
    service = ReadService(restricted, served.hub, tmp_path / "r.sock")
    service.start()
    try:
        remote = RemoteReader(tmp_path / "r.sock")
        assert remote.answers() == RANKED
        assert remote.filters() == frozenset()
        with pytest.raises(UnsupportedQueryError, match="does not answer 'summary'"):
            remote.run(q.Summary())
        assert latest_batch(remote) == 0  # a store that does not say: no batch known
        over_socket = TestClient(create_app(remote, CommitHub()))
        local = TestClient(create_app(restricted, CommitHub()))
        for path in ("/api/capabilities", *ANSWERED, *FILTERED, "/api/summary", "/health"):
            got, want = over_socket.get(path), local.get(path)
            assert (got.status_code, got.json()) == (want.status_code, want.json()), path
        remote.close()
        full = RemoteReader(tmp_path / "full.sock")
        full_service = ReadService(served.store_reader, served.hub, tmp_path / "full.sock")
        full_service.start()
        try:
            assert full.filters() == served.store_reader.filters() == q.FILTERABLE
        finally:
            full.close()
            full_service.stop()
    finally:
        service.stop()


def test_a_store_without_the_latest_events_streams_summaries_only(served: Served) -> None:
    hub = CommitHub(served.hub.version)
    only = frozenset({"summary"})
    web = WebServer(create_app(Restricted(served.store_reader, only), hub), "127.0.0.1", 0)
    web.start()
    try:
        with urllib.request.urlopen(f"{web.url}api/stream", timeout=10) as stream:
            updates = []
            for _ in range(2):
                assert stream.readline().decode().strip() == "event: update"
                updates.append(json.loads(stream.readline().decode().removeprefix("data: ")))
                stream.readline()  # the blank line ending the event
                hub.publish(hub.version + 1)  # a commit: asks for the new events, if it could
        assert [u["events"] for u in updates] == [[], []]
        assert all(u["summary"]["events_total"] > 0 for u in updates)
    finally:
        web.stop()
