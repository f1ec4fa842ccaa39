"""Token auth and the headers of a real ``backbeat serve``: one credential per request, failed
attempts throttled per client address (through a trusted proxy too), signed sessions that
expire, log out and end with their token, an empty token refused, the Host check of a server
without a token, CSP on pages and ``Secure`` cookies behind TLS. The token never reaches a log.

The servers run as ``backbeat serve`` subprocesses over a small idle store; requests go out
through ``http.client`` (repeated headers, a chosen source address: 127.0.0.2 plays the
trusted proxy). The first tests check the app in-process. Next: ``backbeat.serve.auth``,
``tests/support/dashboard.py`` (the server harness), ``docs/security.md``.
"""

from __future__ import annotations

import http.client
import itertools
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from backbeat.errors import ConfigError
from backbeat.serve.app import create_app
from backbeat.serve.auth import AuthConfig
from backbeat.serve.headers import docs_policy
from backbeat.serve.proxies import TrustedProxies
from backbeat.serve.sessions import COOKIE, Sessions
from backbeat.serve.throttle import Throttle
from backbeat.settings import Settings
from tests.serve.conftest import KNOWN, Recommending, Served
from tests.support.dashboard import ServerProcess, server_process

TOKEN = "s3cret-Token-4711"
NEW = "q+Zp/3Xb9kLm1vT8wR2s4uY6aC0eG5iJ7nH/oQ=="
"""The current token: base64, as `openssl rand -base64` makes them (/, + and =)."""
OLD = "b2xkL3Rva2VuK3dpdGgvc2xhc2hlcz0="
"""The previous token, still valid while clients move to NEW."""
PROXY = "127.0.0.2"
"""The trusted proxy: requests sent from this source address."""
LIMIT = 5
_addresses = (f"203.0.113.{n}" for n in itertools.count(1))


def fresh_client() -> str:
    """An address no other request used: its failures are its own."""
    return next(_addresses)


# ----------------------------------------------------------------------------- in-process


@pytest.fixture
def locked(served: Served) -> Iterator[TestClient]:
    config = AuthConfig(tokens=(SecretStr(TOKEN),), failures_per_minute=1000)
    app = create_app(Recommending(served.store_reader), served.hub, config)  # every route answers
    with TestClient(app) as client:
        yield client


def _api_paths(served: Served) -> list[str]:
    """Every ``/api`` path the app documents (the OpenAPI schema lists them all), with its
    path parameters filled in (a listener, a track the in-test recommender knows)."""
    paths = (path for path in served.app.openapi()["paths"] if path.startswith("/api/"))
    return sorted(p.replace("{user_id}", "42").replace("{track}", KNOWN[-1]) for p in paths)


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
    app = create_app(served.store_reader, served.hub, TOKEN)
    with TestClient(app) as client:
        client.get("/api/top-songs", headers={"Authorization": f"Bearer {TOKEN}"})
        client.get("/api/top-songs", headers={"Authorization": f"Bearer {TOKEN}x"})
        client.post("/login", data={"token": TOKEN})
        client.post("/login", data={"token": TOKEN[:-1]})
        client.get("/api/events?artist=" + TOKEN[:4])
    out = capsys.readouterr()
    everything = caplog.text + out.out + out.err
    assert everything  # something was logged at DEBUG, and none of it is the token
    assert not re.search(re.escape(TOKEN[:-1]), everything)


def test_the_throttle_counts_a_sliding_minute_per_address_and_ipv6_network() -> None:
    now = [1000.0]
    throttle = Throttle(per_minute=3, clock=lambda: now[0])
    for _ in range(2):
        assert throttle.fail("198.51.100.7") is None
        now[0] += 10
    assert throttle.fail("198.51.100.7") == 40  # the first failure leaves the window at 1060
    assert throttle.retry_after("198.51.100.7") == 40
    assert throttle.retry_after("198.51.100.8") is None
    now[0] += 40
    assert throttle.retry_after("198.51.100.7") is None
    for host in ("2001:db8::1", "2001:db8::2", "2001:db8::3"):  # one /64: one client
        throttle.fail(host)
    assert throttle.retry_after("2001:db8::ffff") is not None
    assert throttle.retry_after("2001:db8:0:1::1") is None


def test_only_trusted_proxies_name_the_client() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "127.0.0.2"])
    assert proxies.client("192.0.2.1", ["198.51.100.1"]) == "192.0.2.1"  # not a proxy
    assert proxies.client("127.0.0.2", ["198.51.100.1"]) == "198.51.100.1"
    # The client prepends what it likes; the nearest untrusted hop is the one a proxy saw.
    assert proxies.client("10.0.0.5", ["6.6.6.6, 198.51.100.1, 10.1.1.1"]) == "198.51.100.1"
    assert proxies.client("10.0.0.5", ["6.6.6.6", "198.51.100.1"]) == "198.51.100.1"
    assert proxies.client("10.0.0.5", ["junk, 10.1.1.1"]) == "10.1.1.1"


def test_login_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKBEAT_API_TOKEN", f" {NEW}\n")
    monkeypatch.setenv("BACKBEAT_API_TOKEN_PREVIOUS", OLD)
    monkeypatch.setenv("BACKBEAT_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7")
    monkeypatch.setenv("BACKBEAT_ALLOWED_HOSTS", "Dash.Example.")
    config = AuthConfig.from_settings(Settings())
    assert [t.get_secret_value() for t in config.tokens] == [NEW, OLD]
    assert config.trusted_proxies == ("10.0.0.0/8", "192.0.2.7")
    assert config.allowed_hosts == ("dash.example",)
    assert NEW not in repr(config)
    monkeypatch.delenv("BACKBEAT_API_TOKEN")
    with pytest.raises(ConfigError, match="without BACKBEAT_API_TOKEN"):
        AuthConfig.from_settings(Settings(api_token_previous=SecretStr(OLD)))


# ------------------------------------------------------------------------ a real server


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        found = [v for k, v in self.headers if k.lower() == name]
        return found[-1] if found else None

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    url: str,
    method: str,
    path: str,
    headers: Sequence[tuple[str, str]] = (),
    form: str | None = None,
    source: str = "127.0.0.1",
) -> Answer:
    """One request, headers sent as given (repeated ones too), from ``source``."""
    port = urlsplit(url).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15, source_address=(source, 0))
    try:
        own_host = any(k.lower() == "host" for k, _ in headers)
        conn.putrequest(method, path, skip_host=own_host, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        body = form.encode() if form is not None else None
        if body is not None:
            conn.putheader("Content-Type", "application/x-www-form-urlencoded")
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return Answer(response.status, response.getheaders(), response.read())
    finally:
        conn.close()


def via_proxy(client: str, *headers: tuple[str, str]) -> dict[str, Any]:
    """Arguments of :func:`call` for a request the trusted proxy forwards for ``client``."""
    return {"source": PROXY, "headers": [("X-Forwarded-For", client), *headers]}


def bearer(token: str) -> tuple[str, str]:
    return ("Authorization", f"Bearer {token}")


def session(value: str) -> tuple[str, str]:
    return ("Cookie", f"{COOKIE}={value}")


def cookie_of(answer: Answer) -> tuple[str, set[str], dict[str, str]]:
    """The session cookie an answer sets: its value, flags and attributes (lower case)."""
    raw = answer.header("set-cookie")
    assert raw is not None, answer
    first, *attributes = (part.strip() for part in raw.split(";"))
    name, _, value = first.partition("=")
    assert name == COOKIE, raw
    flags = {a.lower() for a in attributes if "=" not in a}
    pairs = dict(a.lower().split("=", 1) for a in attributes if "=" in a)
    return value, flags, pairs


def login(server: ServerProcess, token: str, **how: Any) -> str:
    answer = call(server.url, "POST", "/login", form=urlencode({"token": token}), **how)
    assert (answer.status, answer.header("location")) == (303, "/"), answer
    return cookie_of(answer)[0]


@pytest.fixture(scope="module")
def proxy_source() -> None:
    try:
        with socket.create_connection(("127.0.0.1", 9), timeout=1, source_address=(PROXY, 0)):
            pass
    except ConnectionRefusedError:
        pass  # bound and sent: 127.0.0.2 works as a source address
    except OSError as exc:
        pytest.skip(f"cannot send from {PROXY} (the trusted proxy of these tests): {exc}")


@pytest.fixture(scope="module")
def server(idle_store: Path, proxy_source: None) -> Iterator[ServerProcess]:
    """``backbeat serve`` with a base64 token, a previous one, and 127.0.0.2 as its proxy."""
    env = {
        "BACKBEAT_API_TOKEN": NEW,
        "BACKBEAT_API_TOKEN_PREVIOUS": OLD,
        "BACKBEAT_TRUSTED_PROXIES": PROXY,
        "BACKBEAT_AUTH_FAILURES_PER_MINUTE": str(LIMIT),
    }
    with server_process("serve", "--store", str(idle_store), env=env) as running:
        yield running


def test_one_request_carries_one_credential(server: ServerProcess) -> None:
    url = server.url
    headers = [bearer("guess"), bearer(NEW)]
    answer = call(url, "GET", "/api/summary", **via_proxy(fresh_client(), *headers))
    assert answer.status == 400, answer  # unchecked: not "any of them matches"
    good = login(server, NEW, **via_proxy(fresh_client()))
    forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    several = {
        "two right Authorization headers": [bearer(NEW), bearer(NEW)],
        "two cookies in one header": [("Cookie", f"{COOKIE}=a; {COOKIE}={good}")],
        "two Cookie headers": [session("a"), session(good)],
    }
    for what, headers in several.items():
        answer = call(url, "GET", "/api/summary", **via_proxy(fresh_client(), *headers))
        assert answer.status == 400, (what, answer)
        assert "one credential per request" in answer.json()["error"]
    disagreeing = {
        "right header, forged cookie": [bearer(NEW), session(forged)],
        "wrong header, good cookie": [bearer("guess"), session(good)],
    }
    for what, headers in disagreeing.items():
        answer = call(url, "GET", "/api/summary", **via_proxy(fresh_client(), *headers))
        assert answer.status == 401, (what, answer)
    agreeing = [bearer(NEW), session(good)]
    assert call(url, "GET", "/api/summary", **via_proxy(fresh_client(), *agreeing)).status == 200
    form = urlencode([("token", "guess"), ("token", NEW)])
    answer = call(url, "POST", "/login", form=form, **via_proxy(fresh_client()))
    assert answer.status == 400, answer
    assert answer.header("set-cookie") is None


def test_refused_credentials_are_throttled_per_client_address(server: ServerProcess) -> None:
    url, attacker = server.url, fresh_client()
    guesses = [f"guess-{n}-{NEW[:6]}" for n in range(LIMIT - 1)]
    for guess in guesses:
        answer = call(url, "GET", "/api/summary", **via_proxy(attacker, bearer(guess)))
        assert answer.status == 401, answer
    wrong_login = call(url, "POST", "/login", form="token=guess-at-the-form", **via_proxy(attacker))
    assert wrong_login.header("location") == "/login?failed=1"
    for request in (
        {"method": "GET", "path": "/api/summary", **via_proxy(attacker, bearer(NEW))},
        {"method": "POST", "path": "/login", "form": urlencode({"token": NEW}),
         **via_proxy(attacker)},
        # what a client puts left of the proxy's entry changes nothing
        {"method": "GET", "path": "/api/summary", "source": PROXY,
         "headers": [("X-Forwarded-For", f"{fresh_client()}, {attacker}"), bearer(NEW)]},
    ):  # fmt: skip
        answer = call(url, **request)
        assert answer.status == 429, (request, answer)
        assert 1 <= int(answer.header("retry-after") or 0) <= 60, answer
        assert answer.header("set-cookie") is None
    # Another address through the proxy is not throttled; neither is an untrusted peer that
    # claims to be forwarding for the throttled address.
    assert call(url, "GET", "/api/summary", **via_proxy(fresh_client(), bearer(NEW))).status == 200
    direct = [("X-Forwarded-For", attacker), bearer(NEW)]
    assert call(url, "GET", "/api/summary", headers=direct).status == 200
    assert call(url, "GET", "/health", **via_proxy(attacker)).status == 200
    # Each failure is logged with the address and the reason, never a token or a guess.
    server.wait_for_output("its requests get 429")
    refused = [line for line in server.output if "refused" in line and attacker in line]
    assert len(refused) == LIMIT, refused
    text = "\n".join(server.output)
    for secret in (NEW, OLD, NEW[:6], *guesses, "guess-at-the-form"):
        assert secret not in text, secret


def test_the_browser_gets_a_signed_expiring_session_not_the_token(
    server: ServerProcess,
) -> None:
    url = server.url
    answer = call(url, "POST", "/login", form=urlencode({"token": NEW}))
    assert (answer.status, answer.header("location")) == (303, "/")
    value, flags, attributes = cookie_of(answer)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", value), value  # nothing a browser would quote
    assert NEW not in value
    assert OLD not in value
    assert {"httponly"} <= flags
    assert "secure" not in flags
    assert attributes["samesite"] == "strict"
    assert attributes["path"] == "/"
    assert attributes["max-age"] == "43200"
    assert call(url, "GET", "/api/summary", headers=[session(value)]).status == 200
    page = call(url, "GET", "/", headers=[session(value)])
    assert page.status == 200
    assert b'action="/logout" data-signout>' in page.body  # the sign-out button shows
    assert call(url, "GET", "/login", headers=[session(value)]).header("location") == "/"

    sid, stamp, signature = value.split(".")
    for forged in (f"x{sid}.{stamp}.{signature}", f"{sid}.{stamp}.{signature[::-1]}", "made-up"):
        answer = call(url, "GET", "/api/summary", **via_proxy(fresh_client(), session(forged)))
        assert answer.status == 401, forged
    # Signed with the right key, but older than the session's life: refused, not counted.
    old = Sessions([NEW.encode()], 43_200, clock=lambda: time.time() - 43_201).issue(0)
    assert call(url, "GET", "/api/summary", headers=[session(old)]).status == 401
    assert call(url, "GET", "/", headers=[session(old)]).header("location") == "/login"

    out = call(url, "POST", "/logout", headers=[session(value)])
    assert (out.status, out.header("location")) == (303, "/login")
    cleared, _, cleared_attributes = cookie_of(out)
    assert cleared in ("", '""')
    assert cleared_attributes["max-age"] == "0"
    assert call(url, "GET", "/api/summary", headers=[session(value)]).status == 401


def test_the_cookie_is_secure_behind_a_trusted_proxy_that_says_https(
    server: ServerProcess,
) -> None:
    https = ("X-Forwarded-Proto", "https")
    answer = call(server.url, "POST", "/login", form=urlencode({"token": NEW}),
                  **via_proxy(fresh_client(), https))  # fmt: skip
    assert "secure" in cookie_of(answer)[1]
    answer = call(server.url, "POST", "/login", form=urlencode({"token": NEW}), headers=[https])
    assert "secure" not in cookie_of(answer)[1]  # anyone else's word is not taken


def test_both_tokens_work_during_rotation_and_removing_one_ends_its_sessions(
    server: ServerProcess, idle_store: Path
) -> None:
    summary = "/api/summary"
    for token in (NEW, OLD):
        assert call(server.url, "GET", summary, headers=[bearer(token)]).status == 200
    with_old, with_new = login(server, OLD), login(server, NEW)
    for value in (with_old, with_new):
        assert call(server.url, "GET", summary, headers=[session(value)]).status == 200
    env = {"BACKBEAT_API_TOKEN": NEW}  # OLD rotated out
    with server_process("serve", "--store", str(idle_store), env=env) as rotated:
        assert call(rotated.url, "GET", summary, headers=[session(with_new)]).status == 200
        assert call(rotated.url, "GET", summary, headers=[session(with_old)]).status == 401
        assert call(rotated.url, "GET", summary, headers=[bearer(OLD)]).status == 401
        assert call(rotated.url, "GET", summary, headers=[bearer(NEW)]).status == 200


def test_pages_carry_a_content_security_policy(server: ServerProcess) -> None:
    url, auth = server.url, [bearer(NEW)]
    for path in ("/", "/login?failed=1", "/docs"):
        answer = call(url, "GET", path, headers=[] if path.startswith("/login") else auth)
        assert answer.status == 200, (path, answer)
        policy = answer.header("content-security-policy") or ""
        assert "frame-ancestors 'none'" in policy, path
        assert "script-src 'self'" in policy, path
        assert "unsafe-inline" not in policy, path
        assert answer.header("x-frame-options") == "DENY"
        assert answer.header("x-content-type-options") == "nosniff"
    docs = call(url, "GET", "/docs", headers=auth)
    assert docs.header("content-security-policy") == docs_policy(docs.body.decode())
    assert "'sha256-" in (docs.header("content-security-policy") or "")
    for path in ("/api/summary", "/static/app.js", "/health"):
        answer = call(url, "GET", path, headers=auth)
        assert (
            answer.header("content-security-policy") == "default-src 'none'; frame-ancestors 'none'"
        )
        assert answer.header("x-content-type-options") == "nosniff", path


def test_an_empty_or_lone_previous_token_is_one_line_at_startup(idle_store: Path) -> None:
    command = [sys.executable, "-m", "backbeat", "serve", "--store", str(idle_store), "--port", "0"]
    for env, expected in (
        ({"BACKBEAT_API_TOKEN": ""}, "BACKBEAT_API_TOKEN='': Value error, is empty"),
        ({"BACKBEAT_API_TOKEN_PREVIOUS": OLD}, "PREVIOUS is set without BACKBEAT_API_TOKEN"),
    ):
        clean = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
        try:
            done = subprocess.run(
                command, env=clean | env, capture_output=True, text=True, timeout=30, check=False
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"backbeat serve started with {env}")
        lines = (done.stdout + done.stderr).strip().splitlines()
        assert done.returncode == 1, lines
        assert len(lines) == 1, lines
        assert expected in lines[0], lines
        assert OLD not in lines[0]


def test_without_a_token_only_local_names_are_served_and_all_interfaces_warn(
    idle_store: Path,
) -> None:
    env = {"BACKBEAT_ALLOWED_HOSTS": "dash.example"}
    with server_process("serve", "--store", str(idle_store), env=env, host="0.0.0.0") as open_:
        warning = open_.wait_for_output("without BACKBEAT_API_TOKEN")
        assert "0.0.0.0" in warning
        port = urlsplit(open_.url).port
        for host, status in (
            (f"rebind.evil.example:{port}", 400),
            ("evil.example", 400),
            (f"localhost:{port}", 200),
            (f"127.0.0.1:{port}", 200),
            (f"[::1]:{port}", 200),
            (f"dash.example:{port}", 200),
        ):
            for path in ("/api/summary", "/"):
                answer = call(open_.url, "GET", path, headers=[("Host", host)])
                assert answer.status == status, (host, path, answer)
        refused = call(open_.url, "GET", "/", headers=[("Host", "evil.example")]).json()
        assert "BACKBEAT_ALLOWED_HOSTS" in refused["error"]
