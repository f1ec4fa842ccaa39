"""With a token set, every API route and the dashboard need it; /health stays open; the
token never reaches a log line.

Next: ``test_api.py`` (the routes without a token).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from backbeat.serve.app import create_app
from backbeat.serve.auth import COOKIE
from tests.serve.conftest import Served

TOKEN = "s3cret-Token-4711"


@pytest.fixture
def locked(served: Served) -> Iterator[TestClient]:
    app = create_app(served.store_reader, served.hub, token=TOKEN)
    with TestClient(app) as client:
        yield client


def _api_paths(served: Served) -> list[str]:
    """Every ``/api`` path the app documents (the OpenAPI schema lists them all)."""
    return sorted(path for path in served.app.openapi()["paths"] if path.startswith("/api/"))


def test_every_api_route_needs_the_token(served: Served, locked: TestClient) -> None:
    paths = _api_paths(served)
    assert len(paths) >= 14
    for path in paths:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            response = locked.get(path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.json()["status"] == 401
            assert response.headers["www-authenticate"] == "Bearer"
    for path in ("/metrics", "/openapi.json", "/docs"):
        assert locked.get(path).status_code == 401, path


def test_the_token_opens_every_route(served: Served, locked: TestClient) -> None:
    for path in _api_paths(served):
        if path == "/api/stream":
            continue  # endless; opened in test_stream.py
        response = locked.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, (path, response.text)


def test_health_stays_open(locked: TestClient) -> None:
    assert locked.get("/health").status_code == 200


def test_the_dashboard_redirects_to_login_and_the_form_sets_a_cookie(locked: TestClient) -> None:
    first = locked.get("/", follow_redirects=False)
    assert (first.status_code, first.headers["location"]) == (303, "/login")
    wrong = locked.post("/login", data={"token": "nope"}, follow_redirects=False)
    assert wrong.headers["location"] == "/login?failed=1"
    assert COOKIE not in locked.cookies
    ok = locked.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert (ok.status_code, ok.headers["location"]) == (303, "/")
    assert "httponly" in ok.headers["set-cookie"].lower()
    assert locked.get("/api/summary").status_code == 200  # the cookie now rides along


def test_the_token_never_appears_in_logs(
    served: Served, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    app = create_app(served.store_reader, served.hub, token=TOKEN)
    with TestClient(app) as client:
        client.get("/api/top-songs", headers={"Authorization": f"Bearer {TOKEN}"})
        client.get("/api/top-songs", headers={"Authorization": f"Bearer {TOKEN}x"})
        client.post("/login", data={"token": TOKEN})
        client.get("/api/events?artist=" + TOKEN[:4])
    out = capsys.readouterr()
    everything = caplog.text + out.out + out.err
    assert everything  # something was logged at DEBUG, and none of it is the token
    assert not re.search(re.escape(TOKEN), everything)
