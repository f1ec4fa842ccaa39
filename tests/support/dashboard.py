"""Dashboard helpers: ``backbeat demo`` with its web server as a user starts it, and the
system Chromium driven by Playwright (never a downloaded browser).

:func:`running_demo` starts the demo (:func:`serving`: any command that serves the dashboard;
:func:`server_process`: the same with its environment, address and output)
as a subprocess on a free port and yields the ``dashboard: http://...`` URL it prints
once the server is ready; :func:`chromium` launches
``/usr/bin/chromium`` headless (:func:`browsing`: with a server, both started at once);
:func:`wait_for_data` returns once the page shows data.
``tests/serve/test_dashboard_browser.py`` and ``scripts/screenshot.py`` use them.

Next: ``src/backbeat/serve/web/static/app.js`` (what the page does, ``window.backbeat``).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
)
URL_LINE = re.compile(r"dashboard: (http://[^\s\x1b]+)")
STARTUP_TIMEOUT_S = 60.0

CHARTS = ("topSongs", "topArtists", "genres", "hourly", "engagement", "gender", "level")
"""The names under ``window.backbeat.charts``."""

CHARTS_HAVE_DATA = """names => window.backbeat && names.every(n => {
    const c = window.backbeat.charts[n];
    return c && c.data.datasets.length > 0 && c.data.datasets[0].data.length > 0;
})"""


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing (make system-deps installs chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (a dev dependency: make install)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_demo(store: Path, *, users: int = 2000, duration: int = 120) -> Iterator[str]:
    """Run ``backbeat demo`` with its web server; yield the dashboard URL; stop it with Ctrl-C."""
    with serving(
        "demo", "--store", str(store), "--users", str(users), "--duration", str(duration)
    ) as url:
        yield url


@contextmanager
def serving(*args: str) -> Iterator[str]:
    """Run ``backbeat ARGS --host 127.0.0.1 --port P`` (a command that serves the dashboard);
    yield the URL it prints once the server is ready; stop it with Ctrl-C."""
    with server_process(*args) as server:
        yield server.url


@dataclass
class ServerProcess:
    """A running ``backbeat`` command that serves: its URL (on 127.0.0.1 whatever it listens
    on) and every line it has printed so far."""

    url: str
    output: list[str]

    def wait_for_output(self, text: str, timeout_s: float = 10.0) -> str:
        """The first line containing ``text``, once printed (AssertionError after timeout_s)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [line for line in list(self.output) if text in line]
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no line with {text!r} in:\n" + "\n".join(self.output[-30:]))


@contextmanager
def server_process(
    *args: str, env: dict[str, str] | None = None, host: str = "127.0.0.1"
) -> Iterator[ServerProcess]:
    """Run ``backbeat ARGS --host HOST --port P`` with ``BACKBEAT_*`` from ``env`` only; yield
    it once it prints its URL; stop it with Ctrl-C."""
    command = [
        sys.executable, "-m", "backbeat", *args,
        "--host", host, "--port", str(free_port()),
    ]  # fmt: skip
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
    clean |= {"FORCE_COLOR": "0", "NO_COLOR": "1", "COLUMNS": "120", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=clean | (env or {}),
        text=True,
    )  # fmt: skip
    output: list[str] = []
    found: list[str] = []
    ready = threading.Event()

    def drain() -> None:  # read everything, or a full pipe would stall the demo
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line.rstrip())
            match = URL_LINE.search(line)
            if match and not found:
                found.append(match.group(1))
                ready.set()
        ready.set()

    reader = threading.Thread(target=drain, name="demo-output", daemon=True)
    reader.start()
    try:
        ready.wait(STARTUP_TIMEOUT_S)
        if not found:
            state = "exited" if proc.poll() is not None else "still starting"
            raise RuntimeError(
                f"backbeat {args[0]} printed no 'dashboard: URL' within {STARTUP_TIMEOUT_S:.0f}s "
                f"({state}); last output:\n" + "\n".join(output[-60:])
            )
        port = urlsplit(found[0]).port
        assert port is not None, found
        _wait_until_listening(port, proc, output)
        yield ServerProcess(f"http://127.0.0.1:{port}/", output)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


def _wait_until_listening(port: int, proc: subprocess.Popen[str], output: list[str]) -> None:
    """``backbeat serve`` prints its URL just before it listens: wait for the port."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"nothing listens on port {port}; last output:\n" + "\n".join(output[-60:])
                ) from None
            time.sleep(0.02)


@contextmanager
def chromium() -> Iterator[Browser]:
    """The system Chromium, headless, with nothing of its own on the network."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def browsing(*args: str) -> Iterator[tuple[ServerProcess, Browser]]:
    """:func:`server_process` (``backbeat ARGS``) and :func:`chromium`, started at the same
    time (each takes seconds on a busy machine); the browser closes first."""
    with ExitStack() as stack, ThreadPoolExecutor(1, "server-start") as pool:
        # the pool waits for the server to be up (or failed) before the stack stops it
        starting = pool.submit(stack.enter_context, server_process(*args))
        with chromium() as browser:
            yield starting.result(), browser


def csp_violations(page: Page) -> list[str]:
    """The Content-Security-Policy violations of every page ``page`` loads from now on
    (Chromium reports each on the console), filled as they happen."""
    found: list[str] = []
    page.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return found


def wait_for_data(page: Page, timeout_s: float = 45.0) -> None:
    """Return once every chart has data and the live table has rows."""
    page.wait_for_function(CHARTS_HAVE_DATA, arg=list(CHARTS), timeout=timeout_s * 1000)
    page.wait_for_function(  # a function, not an expression: Playwright evals those (CSP)
        "() => document.querySelectorAll('#events tr').length > 0", timeout=timeout_s * 1000
    )


def settle(page: Page, seconds: float = 1.0) -> None:
    """Let the chart animations finish (Chart.js animates each update for 0.6 s)."""
    page.wait_for_timeout(seconds * 1000)
