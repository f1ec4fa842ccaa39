"""The web server's limits, each met by a real request to a real uvicorn server: oversized
bodies and heads are refused (413, 431), slow ones cut off (408, a closed connection), live
streams and connections past their caps answered 503, a client leaving mid-login is one log
line, and junk query parameters cannot grow the response cache.

Waits are for an event (an answer, a closed connection, a log record) with a generous
deadline, never a fixed sleep.

Next: ``backbeat.serve.limits`` (the limits), ``backbeat.serve.cache`` (the cache's budget).
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pytest

from backbeat.serve.app import WebServer, create_app
from backbeat.serve.cache import ResponseCache
from backbeat.serve.limits import LIMITS, Limits
from backbeat.sinks import queries as q
from tests.serve.conftest import Served
from tests.support.sockets import until_closed

SMALL = Limits(head_timeout_s=1.0, body_timeout_s=1.0, keep_alive_s=1, max_body=1024, max_streams=3)
WAIT_S = 15.0  # the longest any wait here may take (a loaded 2-core machine)


@contextmanager
def _serving(reader: q.Reader, served: Served, limits: Limits = SMALL) -> Iterator[WebServer]:
    web = WebServer(create_app(reader, served.hub, limits=limits), "127.0.0.1", 0, limits=limits)
    web.start()
    try:
        yield web
    finally:
        web.stop()


@pytest.fixture
def web(served: Served) -> Iterator[WebServer]:
    with _serving(served.store_reader, served) as server:
        yield server


def _address(web: WebServer) -> tuple[str, int]:
    host, port = web.server.servers[0].sockets[0].getsockname()[:2]
    return host, port


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def _json_body(answer: bytes) -> Any:
    return json.loads(answer.partition(b"\r\n\r\n")[2])


def test_a_body_announced_over_the_cap_is_refused_before_it_is_read(web: WebServer) -> None:
    head = (
        b"POST /login HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 67108864\r\n\r\n"
    )
    with socket.create_connection(_address(web)) as sock:
        sock.sendall(head)  # and not one byte of the 64 MB
        answer = until_closed(sock, WAIT_S)
    assert _status(answer) == 413
    assert _json_body(answer) == {"error": "a request body is 1,024 bytes at most", "status": 413}


def test_a_chunked_body_is_refused_once_past_the_cap(web: WebServer) -> None:
    chunk = b"%x\r\n%s\r\n" % (700, b"t" * 700)
    with socket.create_connection(_address(web)) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunk * 2  # 1,400 bytes, and no last chunk: the body never ends
        )
        answer = until_closed(sock, WAIT_S)
    assert _status(answer) == 413


def test_a_small_form_still_reaches_the_login(web: WebServer) -> None:
    body = b"token=whatever"
    with socket.create_connection(_address(web)) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        assert _status(until_closed(sock, WAIT_S)) == 303


def test_a_body_slower_than_its_timeout_gets_408(web: WebServer) -> None:
    with socket.create_connection(_address(web)) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\ntoken="
        )
        started = time.monotonic()
        answer = until_closed(sock, WAIT_S)
    assert _status(answer) == 408
    assert time.monotonic() - started >= SMALL.body_timeout_s / 2


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_client_leaving_mid_login_is_one_log_line(web: WebServer) -> None:
    handler = _Records()
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "backbeat")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with socket.create_connection(_address(web)) as sock:
            sock.sendall(
                b"POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\ntoken="
            )
        deadline = time.monotonic() + WAIT_S
        while not handler.records and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    assert len(handler.records) == 1, [r.getMessage() for r in handler.records]
    (record,) = handler.records
    assert record.exc_info is None, "a traceback"
    assert "went away while sending its request body: POST /login" in record.getMessage()
    assert "\n" not in logging.Formatter().format(record)


@pytest.mark.parametrize("complete", [True, False], ids=["whole head", "head still coming"])
def test_a_request_head_over_the_cap_gets_431(web: WebServer, complete: bool) -> None:
    head = b"GET /api/summary HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * (LIMITS.max_head + 1)
    with socket.create_connection(_address(web)) as sock:
        sock.sendall(head + (b"\r\n\r\n" if complete else b""))
        answer = until_closed(sock, WAIT_S)
    assert _status(answer) == 431
    assert _json_body(answer)["status"] == 431


def test_a_head_just_under_the_cap_is_served(web: WebServer) -> None:
    filler = b"a" * (LIMITS.max_head - 200)
    request = b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Big: %s\r\n\r\n"
    with socket.create_connection(_address(web)) as sock:
        sock.sendall(request % filler)
        assert _status(until_closed(sock, WAIT_S)) == 200


def _read_response(sock: socket.socket) -> bytes:
    """One whole response (with a Content-Length) from a kept-alive connection."""
    sock.settimeout(WAIT_S)
    data = b""

    def more() -> bytes:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection after {data!r}"
        return chunk

    while b"\r\n\r\n" not in data:
        data += more()
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += more()
    return head


def test_a_request_head_must_arrive_in_time(web: WebServer) -> None:
    """Slowloris: a connection that sends nothing, or part of a head, is closed by the
    server after the head timeout, also on a connection kept alive after a first request."""
    partial = b"GET /api/summary HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
    for first in (None, b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"):
        for then in (b"", partial):
            with socket.create_connection(_address(web)) as sock:
                if first is not None:
                    sock.sendall(first)
                    assert _read_response(sock).startswith(b"HTTP/1.1 200")
                sock.sendall(then)
                started = time.monotonic()
                assert until_closed(sock, WAIT_S) == b""
                waited = time.monotonic() - started
            # (an idle kept-alive connection is closed by uvicorn's keep-alive timer)
            assert waited >= min(SMALL.head_timeout_s, SMALL.keep_alive_s) / 4


def _once_free(url: str) -> Any:
    """``url`` opened once the server has seen a slot free (it answers 503 until then)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return urllib.request.urlopen(url, timeout=WAIT_S)
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def test_live_streams_past_the_cap_get_503_until_one_closes(web: WebServer) -> None:
    url = f"{web.url}api/stream"
    streams = [urllib.request.urlopen(url, timeout=WAIT_S) for _ in range(SMALL.max_streams)]
    try:
        assert all(s.status == 200 for s in streams)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=WAIT_S)
        assert refused.value.code == 503
        assert json.loads(refused.value.read())["status"] == 503
        assert urllib.request.urlopen(f"{web.url}health", timeout=WAIT_S).status == 200
        streams.pop().close()
        streams.append(_once_free(url))
    finally:
        for stream in streams:
            stream.close()


def test_connections_past_the_limit_get_503(served: Served) -> None:
    limits = Limits(max_connections=4)
    with _serving(served.store_reader, served, limits) as web:
        idle = [socket.create_connection(_address(web)) for _ in range(limits.max_connections)]
        try:
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{web.url}health", timeout=WAIT_S)
            assert refused.value.code == 503
        finally:
            for sock in idle:
                sock.close()
        _once_free(f"{web.url}health").close()


class _Counting(q.Reader):
    """A reader that counts the queries it is asked (from the server's threads)."""

    def __init__(self, inner: q.Reader) -> None:
        self.inner = inner
        self.asked: Counter[str] = Counter()
        self._lock = threading.Lock()

    def answers(self) -> frozenset[str]:
        return self.inner.answers()

    def run(self, query: q.Query) -> pa.Table:
        with self._lock:
            self.asked[q.name_of(query)] += 1
        return self.inner.run(query)


def _response_cache(web: WebServer) -> ResponseCache:
    layer: Any = web.server.config.loaded_app
    while layer is not None and not isinstance(layer, ResponseCache):
        layer = getattr(layer, "middleware_stack", None) or getattr(layer, "app", None)
    assert isinstance(layer, ResponseCache)
    return layer


def _junk(rng: random.Random) -> list[tuple[str, str]]:
    return [
        (
            f"junk{rng.randrange(10**9)}",
            "".join(rng.choices("abcxyz%20;'", k=rng.randrange(1, 400))),
        )
        for _ in range(rng.randrange(1, 4))
    ]


def _get(conn: http.client.HTTPConnection, path: str, params: list[tuple[str, str]]) -> bytes:
    conn.request("GET", f"{path}?" + "&".join(f"{k}={v}" for k, v in params))
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, body
    return body


def test_junk_parameters_and_their_order_share_one_cache_entry(served: Served) -> None:
    reader = _Counting(served.store_reader)
    rng = random.Random(17)
    with _serving(reader, served, LIMITS) as web:
        conn = http.client.HTTPConnection(*_address(web), timeout=WAIT_S)
        answers = set()
        for _ in range(300):
            params = [("window", "all"), ("limit", rng.choice(["5", "05"])), *_junk(rng)]
            if rng.random() < 0.3:
                params.append(("limit", "5"))  # repeated: the last one counts
            rng.shuffle(params)
            answers.add(_get(conn, "/api/top-songs", [*params, ("limit", "5")]))
        conn.close()
        cache = _response_cache(web)
        assert len(answers) == 1
        assert reader.asked["top-songs"] <= 2  # the first request (uncached), then one entry
        assert len(cache.flights) == 1


def test_the_cache_keeps_within_its_byte_budget(served: Served) -> None:
    limits = Limits(cache_bytes=256 << 10)
    rng = random.Random(29)
    with _serving(served.store_reader, served, limits) as web:
        conn = http.client.HTTPConnection(*_address(web), timeout=WAIT_S)
        _get(conn, "/api/events", [])  # the first request builds the app's middleware
        cache = _response_cache(web)
        sizes: dict[str, int] = {}
        largest = 0
        for _ in range(300):
            limit = str(rng.randrange(1, 501))
            sizes[limit] = len(_get(conn, "/api/events", [("limit", limit), *_junk(rng)]))
            largest = max(largest, cache.flights.nbytes)
        conn.close()
        assert sum(sizes.values()) > 4 * limits.cache_bytes  # far more than fits
        assert 0 < largest <= limits.cache_bytes
        assert len(cache.flights) < len(sizes)
