"""``backbeat health`` through the real CLI against a real HTTP server on loopback: 2xx is exit
0, anything else (an error status, nothing listening, no answer in time) one line on stderr,
naming the URL and the cause, and exit 1."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner, Result

from backbeat.commands import app
from backbeat.commands.health import DEFAULT_URL, URL_ENV
from tests.support.sockets import free_port

runner = CliRunner()
ANSWERS = {"/health": 200, "/metrics": 200, "/down": 503, "/missing": 404}


class _Handler(BaseHTTPRequestHandler):
    """Answers ANSWERS[path] with a small JSON body, like backbeat's ``/health``."""

    def do_GET(self) -> None:
        status = ANSWERS.get(self.path, 404)
        body = json.dumps(
            {"status": "ok"} if status < 300 else {"error": "store not ready", "status": status}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The base URL of a stdlib HTTP server on a free loopback port."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _health(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, ["health", *args], env=env)


def _one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def test_a_2xx_answer_is_exit_0_and_one_line(server: str) -> None:
    result = _health("--url", f"{server}/health")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok: {server}/health answered 200 in ")
    assert len(result.stdout.splitlines()) == 1


def test_json_output_names_the_url_and_status(server: str) -> None:
    result = runner.invoke(app, ["--json", "health", "--url", f"{server}/metrics"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert (answer["url"], answer["status"]) == (f"{server}/metrics", 200)
    assert answer["elapsed_ms"] >= 0


def test_the_url_comes_from_the_environment(server: str) -> None:
    assert _health(env={URL_ENV: f"{server}/health"}).exit_code == 0
    line = _one_error_line(_health(env={URL_ENV: f"{server}/down"}))
    assert f"{server}/down answered 503" in line


def test_an_error_status_is_one_line_naming_the_url_the_status_and_the_body(server: str) -> None:
    line = _one_error_line(_health("--url", f"{server}/down"))
    assert line.startswith(f"error: {server}/down answered 503 Service Unavailable")
    assert "store not ready" in line


def test_nothing_listening_is_one_line_naming_the_url(server: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/health"
    line = _one_error_line(_health("--url", url))
    assert line == f"error: {url} did not answer: connection refused"


def test_a_server_that_never_answers_times_out_in_one_line() -> None:
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/health"
        line = _one_error_line(_health("--url", url, "--timeout", "0.2"))
    assert line == f"error: {url} did not answer: no answer within 0.2s"


def _read_and_hang_up(listener: socket.socket) -> None:
    """Accept one connection, read the request, close without answering."""
    connection, _ = listener.accept()
    with connection:
        connection.recv(65536)


def test_a_server_that_hangs_up_is_one_line() -> None:
    with socket.socket() as rude:
        rude.bind(("127.0.0.1", 0))
        rude.listen(1)
        url = f"http://127.0.0.1:{rude.getsockname()[1]}/health"
        closer = threading.Thread(target=_read_and_hang_up, args=(rude,), daemon=True)
        closer.start()
        line = _one_error_line(_health("--url", url))
        closer.join()
    assert line.startswith(f"error: {url} did not answer: ")
    assert "closed connection" in line or "connection reset" in line


def test_a_password_in_the_url_is_never_printed() -> None:
    port = free_port()
    line = _one_error_line(_health("--url", f"http://probe:s3cret@127.0.0.1:{port}/health"))
    assert "s3cret" not in line
    assert f"http://probe:***@127.0.0.1:{port}/health" in line


def test_not_an_http_url_is_one_line() -> None:
    line = _one_error_line(_health("--url", "ftp://example.org/health"))
    assert "http:// or https://" in line


def test_the_default_is_the_api_health_on_loopback() -> None:
    assert DEFAULT_URL == "http://127.0.0.1:8000/health"
