"""The recommendation routes over a reader that answers the recommender's queries: the shape
of every answer, limits (422), an unknown track (404, also through the web process's
socket), a store without a recommender (501, and capabilities leave the routes out), no model
yet (503), and answers that follow a new model at once (never cached by batch).

The recommender is a small in-test reader (``conftest.Recommending``) wrapping the real test
store: the real one lands with ``backbeat.recommend`` (its end-to-end test is
``test_recommend_panel.py``).

Next: ``backbeat.serve.routes.recommend``, ``test_capabilities.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backbeat.errors import NotFoundError
from backbeat.serve.app import create_app
from backbeat.serve.hub import CommitHub
from backbeat.serve.remote import ReadService, RemoteReader
from backbeat.sinks import queries as q
from tests.serve.conftest import KNOWN, REASONS, TRAINED_AT, Recommending, Served

USER = 42
PICK_KEYS = {"rank", "track", "track_id", "artist", "song", "genre", "score", "reason"}
ROUTES = (
    f"/api/users/{USER}/recommendations",
    "/api/tracks/t1/similar",
    f"/api/users/{USER}/listens",
    "/api/recommend/model",
)
RECOMMENDER_ROUTES = ("/api/users/{user_id}/recommendations", "/api/tracks/{track}/similar",
                      "/api/recommend/model")  # fmt: skip


@pytest.fixture
def recommender(served: Served) -> Recommending:
    return Recommending(served.store_reader)


@pytest.fixture
def hub(served: Served) -> CommitHub:
    return CommitHub(served.hub.version)


@pytest.fixture
def api(recommender: Recommending, hub: CommitHub) -> Iterator[TestClient]:
    with TestClient(create_app(recommender, hub)) as client:
        yield client


def _ok(client: TestClient, path: str) -> dict[str, Any]:
    response = client.get(path)
    assert response.status_code == 200, (path, response.text)
    body: dict[str, Any] = response.json()
    return body


def _error(client: TestClient, path: str, status: int) -> str:
    response = client.get(path)
    assert response.status_code == status, (path, response.text)
    body = response.json()
    assert body == {"error": body["error"], "status": status}, body
    assert body["error"].strip(), body
    assert "\n" not in body["error"], body
    return str(body["error"])


def _check_model(model: dict[str, Any], version: int = 1) -> None:
    assert model == {"version": version, "trained_at": model["trained_at"], "through_batch": 7}
    assert int(datetime.fromisoformat(model["trained_at"]).timestamp() * 1000) == TRAINED_AT


def test_recommendations_name_the_model_and_say_why(api: TestClient) -> None:
    body = _ok(api, f"/api/users/{USER}/recommendations")
    assert body["user"] == USER
    _check_model(body["model"])
    assert len(body["items"]) == 10
    assert all(set(item) == PICK_KEYS for item in body["items"])
    assert [i["rank"] for i in body["items"]] == list(range(1, 11))
    assert {i["reason"] for i in body["items"]} == set(REASONS)
    assert body["items"][1]["genre"] is None
    assert body["items"][1]["track_id"] is None
    assert len(_ok(api, f"/api/users/{USER}/recommendations?limit=200")["items"]) == 200
    assert len(_ok(api, "/api/users/-3/recommendations?limit=1")["items"]) == 1


def test_nothing_to_recommend_is_an_empty_answer_without_a_model(
    api: TestClient, recommender: Recommending
) -> None:
    recommender.silent.add(USER)
    body = _ok(api, f"/api/users/{USER}/recommendations")
    assert body == {"user": USER, "model": None, "items": []}


@pytest.mark.parametrize("track", KNOWN)
def test_similar_tracks_of_any_key(api: TestClient, track: str) -> None:
    body = _ok(api, f"/api/tracks/{track.replace(chr(31), '%1F')}/similar?limit=3")
    assert body["track"] == track
    _check_model(body["model"])
    assert [i["reason"] for i in body["items"]] == ["similar sound"] * 3


def test_an_unknown_track_is_404(api: TestClient) -> None:
    reason = _error(api, "/api/tracks/nobody-knows-me/similar", 404)
    assert "'nobody-knows-me'" in reason


def test_a_listeners_recent_listens(api: TestClient) -> None:
    body = _ok(api, f"/api/users/{USER}/listens")
    assert body["user"] == USER
    assert len(body["items"]) == 20
    first = body["items"][0]
    assert set(first) == {"ts", "track", "track_id", "artist", "song", "genre", "listen_pct",
                          "completed", "skipped"}  # fmt: skip
    assert int(datetime.fromisoformat(first["ts"]).timestamp() * 1000) == TRAINED_AT
    assert first["completed"] is None
    assert first["skipped"] is True
    assert len(_ok(api, f"/api/users/{USER}/listens?limit=500")["items"]) == 500


def test_the_model(api: TestClient) -> None:
    body = _ok(api, "/api/recommend/model")
    assert body == {"ready": True, "model_version": 1, "trained_at": body["trained_at"], "through_batch": 7,
                    "users": 300, "tracks": 900, "updates": 3}  # fmt: skip
    assert int(datetime.fromisoformat(body["trained_at"]).timestamp() * 1000) == TRAINED_AT


@pytest.mark.parametrize(
    "path",
    [
        f"/api/users/{USER}/recommendations?limit=0",
        f"/api/users/{USER}/recommendations?limit=201",
        f"/api/users/{USER}/recommendations?limit=ten",
        "/api/users/abc/recommendations",
        f"/api/users/{2**63}/recommendations",
        "/api/tracks/t1/similar?limit=0",
        "/api/tracks/t1/similar?limit=201",
        f"/api/tracks/{'x' * 201}/similar",
        f"/api/users/{USER}/listens?limit=0",
        f"/api/users/{USER}/listens?limit=501",
        "/api/users/1.5/listens",
    ],
)
def test_out_of_range_parameters_are_422(api: TestClient, path: str) -> None:
    _error(api, path, 422)


def test_no_model_yet_is_503_with_the_reason(api: TestClient, recommender: Recommending) -> None:
    recommender.version = None
    for path in ROUTES[:2]:
        assert "recommend train" in _error(api, path, 503), path
    _ok(api, ROUTES[2])  # the store still answers the listens
    assert _ok(api, ROUTES[3]) == {  # the model route says so without an error
        "ready": False, "model_version": None, "trained_at": None, "through_batch": None,
        "users": None, "tracks": None, "updates": None,
    }  # fmt: skip


def test_a_store_without_a_recommender_answers_501_and_lists_none(
    client: TestClient, api: TestClient
) -> None:
    for path in ROUTES[:2] + ROUTES[3:]:
        assert "this store does not answer '" in _error(client, path, 501), path
    routes = set(client.get("/api/capabilities").json()["routes"])
    assert not routes & set(RECOMMENDER_ROUTES), routes
    with_recommender = set(api.get("/api/capabilities").json()["routes"])
    assert {*RECOMMENDER_ROUTES, "/api/users/{user_id}/listens"} <= with_recommender


def test_answers_follow_a_new_model_at_once(
    api: TestClient, recommender: Recommending, hub: CommitHub
) -> None:
    """A model lands between commits: no cached answer of the old one is served, before or
    after the next commit."""
    paths = (*ROUTES[:2], ROUTES[3])
    for _ in range(2):
        for path in paths:
            _ok(api, path)
    recommender.version = 2
    for path in paths:
        body = _ok(api, path)
        assert (body.get("model") or {}).get("version", body.get("model_version")) == 2, path
    hub.publish(hub.version + 1)
    recommender.version = 3
    for path in paths:
        body = _ok(api, path)
        assert (body.get("model") or {}).get("version", body.get("model_version")) == 3, path


def test_the_web_process_reader_raises_not_found_and_not_ready(
    recommender: Recommending, hub: CommitHub, tmp_path: Path
) -> None:
    service = ReadService(recommender, hub, tmp_path / "r.sock")
    service.start()
    remote = RemoteReader(tmp_path / "r.sock")
    try:
        assert remote.answers() >= q.RECOMMENDER
        with pytest.raises(NotFoundError, match="no track 'nope'"):
            remote.run(q.SimilarTracks(track="nope"))
        assert remote.run(q.SimilarTracks(track="t1", limit=2)).num_rows == 2  # still usable
        with TestClient(create_app(remote, hub)) as over_socket:
            assert "'nope'" in _error(over_socket, "/api/tracks/nope/similar", 404)
            assert len(_ok(over_socket, ROUTES[0])["items"]) == 10
            recommender.version = None
            assert "recommend train" in _error(over_socket, ROUTES[0], 503)
    finally:
        remote.close()
        service.stop()


def test_the_api_documents_the_routes(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    similar = paths["/api/tracks/{track}/similar"]["get"]
    assert similar["tags"] == ["recommendations"]
    assert "404" in similar["responses"]
    assert similar["x-queries"]["needs"] == ["similar-tracks"]
    for path in RECOMMENDER_ROUTES:
        assert "200" in paths[path]["get"]["responses"], path
