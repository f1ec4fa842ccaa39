"""``backbeat health``: does a running backbeat answer over HTTP? The container image's
HEALTHCHECK, and a probe for any supervisor (compose, systemd, a load balancer's script).

It sends one GET to ``--url`` (default: ``BACKBEAT_HEALTH_URL``, else the API's ``/health`` on
``http://127.0.0.1:8000``) with the standard library only, never through a proxy, and exits 0
when the answer is 2xx; anything else (nothing listening, no answer within ``--timeout``, a
non-2xx status) is one line naming the URL and the cause, and exit code 1. For ``backbeat
stream`` the probe is its metrics endpoint: ``backbeat health --url http://127.0.0.1:9108/metrics``.

Next: ``backbeat.serve.routes.ops`` (what ``/health`` answers), the ``Dockerfile`` (HEALTHCHECK).
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

import typer

from backbeat import __version__
from backbeat.commands.common import emit, guard
from backbeat.errors import ConfigError, TransientError

DEFAULT_URL = "http://127.0.0.1:8000/health"
URL_ENV = "BACKBEAT_HEALTH_URL"
_DETAIL_CHARS = 200


class UnhealthyError(TransientError):
    """The endpoint did not answer 2xx (refused, timed out, or an error status)."""


@dataclass(frozen=True)
class Answer:
    """A 2xx answer: the URL asked, its status code and how long it took."""

    url: str
    status: int
    elapsed_ms: float


def probe(url: str, timeout_s: float) -> Answer:
    """GET ``url`` once, without proxies, and return its answer when it is 2xx.

    Raises:
        ConfigError: ``url`` is not an http:// or https:// URL.
        UnhealthyError: nothing answered within ``timeout_s`` seconds, the connection failed,
            or the status was not 2xx (the message names the URL and the cause).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"--url {_shown(url)!r}: give an http:// or https:// URL")
    shown = _shown(url)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"User-Agent": f"backbeat-health/{__version__}"})
    started = time.monotonic()
    try:
        with opener.open(request, timeout=timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status_line = f"{exc.code} {exc.reason}".strip()
        raise UnhealthyError(f"{shown} answered {status_line}{_detail(exc)}") from None
    except urllib.error.URLError as exc:
        raise UnhealthyError(f"{shown} did not answer: {_cause(exc.reason, timeout_s)}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise UnhealthyError(f"{shown} did not answer: {_cause(exc, timeout_s)}") from None
    elapsed_ms = (time.monotonic() - started) * 1000
    if not 200 <= status < 300:  # urllib raises HTTPError for these; a guard all the same
        raise UnhealthyError(f"{shown} answered {status}")
    return Answer(url=shown, status=status, elapsed_ms=elapsed_ms)


def _shown(url: str) -> str:
    """``url`` as printed: a password in it replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{netloc[1]}").geturl()


def _cause(reason: object, timeout_s: float) -> str:
    """A connection failure in a few words (``connection refused``, ``no answer within 3s``)."""
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout_s:g}s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror[0].lower() + reason.strerror[1:]
    return str(reason) or type(reason).__name__


def _detail(exc: urllib.error.HTTPError) -> str:
    """The start of an error answer's body, on one line (``: the store is not ready``)."""
    try:
        body = exc.read(_DETAIL_CHARS).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return ""
    finally:
        exc.close()
    text = " ".join(body.split())
    return f": {text}" if text else ""


def health(
    url: Annotated[
        str,
        typer.Option(
            envvar=URL_ENV,
            help="The URL to GET: the API's /health (serve, demo, stream --serve) or the "
            "stream's metrics (http://127.0.0.1:9108/metrics).",
        ),
    ] = DEFAULT_URL,
    timeout: Annotated[float, typer.Option(min=0.01, help="Seconds to wait for the answer.")] = 3.0,
) -> None:
    """Exit 0 when a running backbeat answers 2xx at --url, else one line and exit 1."""
    answer = guard(lambda: probe(url, timeout))
    emit(
        {"url": answer.url, "status": answer.status, "elapsed_ms": round(answer.elapsed_ms, 1)},
        f"ok: {answer.url} answered {answer.status} in {answer.elapsed_ms:.0f} ms",
    )
