"""The web application: API routes, live push, the dashboard, auth and the response cache.

:func:`create_app` assembles one ASGI app over a reader and a commit hub; :class:`WebServer`
runs it with uvicorn, in a thread of the engine's process (``backbeat demo``) or in the
foreground (``backbeat serve``). Errors keep one shape: ``{"error": reason, "status": code}``.

Next: ``routes/`` (the API), ``auth.py`` and ``login.py`` (tokens, sessions), ``headers.py``
(CSP, Host check), ``cache.py``, ``web/`` (the dashboard's files).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp

from backbeat.errors import BackbeatError, ConfigError, NotFoundError, UnsupportedQueryError
from backbeat.observe import logs
from backbeat.serve import headers, models
from backbeat.serve.auth import AuthConfig, Gate, TokenAuth
from backbeat.serve.cache import ResponseCache
from backbeat.serve.hub import CommitHub
from backbeat.serve.limits import LIMITS, BodyLimit, Limits, StreamLimit, server_options
from backbeat.serve.login import login_routes
from backbeat.serve.metrics import RequestMetrics, ServeMetrics
from backbeat.serve.proxies import ForwardedHeaders, TrustedProxies
from backbeat.serve.routes import build_router, recommend
from backbeat.sinks.queries import Reader

log = logging.getLogger(__name__)

WEB = Path(__file__).parent / "web"
_ERRORS = {
    404: {"model": models.ErrorBody, "description": "What the path names does not exist."},
    422: {
        "model": models.ErrorBody,
        "description": "A parameter is invalid (the reason says which).",
    },
    501: {"model": models.ErrorBody, "description": "This store does not answer this query."},
    503: {"model": models.ErrorBody, "description": "The store cannot answer right now."},
}


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason, "status": status}, status_code=status)


def _status_of(exc: BackbeatError) -> int:
    """404 for what does not exist, 501 for a query the store never answers, else 503."""
    if isinstance(exc, NotFoundError):
        return 404
    return 501 if isinstance(exc, UnsupportedQueryError) else 503


def _reason(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def create_app(
    reader: Reader,
    hub: CommitHub,
    auth: AuthConfig | str | None = None,
    limits: Limits = LIMITS,
) -> FastAPI:
    """The backbeat web app over ``reader``. With tokens in ``auth`` (an :class:`AuthConfig`,
    or one token), every route but ``/health``, ``/login``, ``/logout`` and static assets
    requires one (``auth.py``). :class:`WebServer` adds the Host check (``headers.py``).
    ``limits``: request bodies, live streams, the cache (``limits.py``)."""
    config = AuthConfig.of(auth)
    app = FastAPI(
        title="backbeat",
        summary="Live analytics of a music streaming service.",
        version="1",
        docs_url=None,
        responses=_ERRORS,  # type: ignore[arg-type]
    )
    app.state.auth = config
    app.state.metrics = metrics = ServeMetrics(reader)
    app.include_router(build_router(reader, hub))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _reason(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(BackbeatError)
    async def store_error(request: Request, exc: BackbeatError) -> JSONResponse:
        return _error(_status_of(exc), str(exc))

    index_page = (WEB / "index.html").read_text(encoding="utf-8")
    if config.tokens:  # the sign-out button
        index_page = index_page.replace(" data-signout hidden", " data-signout")

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(index_page, headers={"cache-control": "no-cache"})

    swagger = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="backbeat API",
        swagger_js_url="/static/vendor/swagger-ui-bundle.js",
        swagger_css_url="/static/vendor/swagger-ui.css",
        swagger_favicon_url="/static/favicon.svg",
    )
    docs_page = bytes(swagger.body).decode()
    docs_headers = {"content-security-policy": headers.docs_policy(docs_page)}

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(docs_page, headers=docs_headers)

    gate = Gate(config)
    app.include_router(login_routes(gate, WEB / "login.html"))
    app.mount("/static", StaticFiles(directory=WEB / "static", check_dir=False), name="static")
    # The last added runs first: request metrics, the body cap, the client's address and scheme (proxies),
    # the headers of every answer, credentials, the live-stream cap, the cache. WebServer
    # puts the Host check in front of it all.
    # Recommendations change with the model, not with the batch: never cached.
    skip = ("/api/stream", *recommend.FRESH)
    app.add_middleware(ResponseCache, hub=hub, skip=skip, limits=limits)
    app.add_middleware(StreamLimit, max_streams=limits.max_streams)
    if config.tokens:
        app.add_middleware(TokenAuth, gate=gate)
    app.add_middleware(headers.SecurityHeaders)
    app.add_middleware(ForwardedHeaders, proxies=TrustedProxies(config.trusted_proxies))
    app.add_middleware(BodyLimit, max_bytes=limits.max_body, timeout_s=limits.body_timeout_s)
    app.add_middleware(RequestMetrics, metrics=metrics)  # first: every answer is counted
    return app


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _on_the_network(app: FastAPI, host: str) -> ASGIApp:
    """``app`` as served on ``host``: behind the Host check when it has no token (or names
    are configured); a warning when it has no token and others can reach it."""
    auth: AuthConfig = getattr(app.state, "auth", AuthConfig())
    if auth.tokens and not auth.allowed_hosts:
        return app
    if not auth.tokens and not _loopback(host):
        log.warning(
            "serving on %s without BACKBEAT_API_TOKEN: anyone who can reach this address "
            "reads the API and the dashboard (set a token: see docs/security.md)",
            host,
        )
    return headers.HostCheck(app, allowed=(*auth.allowed_hosts, host.lower()))


class WebServer:
    """uvicorn serving an app on host:port, in a background thread or in the foreground."""

    def __init__(self, app: FastAPI, host: str, port: int, limits: Limits = LIMITS) -> None:
        config = uvicorn.Config(
            _on_the_network(app, host),
            host=host,
            port=port,
            log_level="warning",
            log_config=logs.uvicorn_log_config(),
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,  # live streams never end by themselves
            proxy_headers=False,  # only BACKBEAT_TRUSTED_PROXIES are believed (proxies.py)
            **server_options(limits),
        )
        self.server = uvicorn.Server(config)
        self.url = f"http://{host}:{port}/"
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        """Serve in a daemon thread; return once it listens (ConfigError if it cannot)."""
        self._thread = threading.Thread(target=self.server.run, name="web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.server.should_exit = True
                raise ConfigError(
                    f"the web server could not listen on {self.url}: is the port in use? "
                    "(--port 0 picks a free one)"
                )
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        self.url = f"http://{host}:{port}/"  # the real port when asked for port 0

    def run(self) -> None:
        """Serve in this thread until Ctrl-C / SIGTERM."""
        self.server.run()

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
