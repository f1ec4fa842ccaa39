"""Dashboard helpers: ``backbeat demo`` with its web server as a user starts it, and the
system Chromium driven by Playwright (never a downloaded browser).

:func:`running_demo` starts the demo (:func:`serving`: any command that serves the dashboard)
as a subprocess on a free loopback port and yields the ``dashboard: http://...`` URL it prints
once the server is ready; :func:`chromium` launches
``/usr/bin/chromium`` headless; :func:`wait_for_data` returns once the page shows data.
``tests/serve/test_dashboard_browser.py`` and ``scripts/screenshot.py`` use them.

Next: ``src/backbeat/serve/web/static/app.js`` (what the page does, ``window.backbeat``).
"""

from __future__ import annotations

import collections
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

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
    command = [
        sys.executable, "-m", "backbeat", *args,
        "--host", "127.0.0.1", "--port", str(free_port()),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
    env |= {"FORCE_COLOR": "0", "NO_COLOR": "1", "COLUMNS": "120", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    )
    tail: collections.deque[str] = collections.deque(maxlen=60)
    found: list[str] = []
    ready = threading.Event()

    def drain() -> None:  # read everything, or a full pipe would stall the demo
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
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
                f"({state}); last output:\n" + "\n".join(tail)
            )
        yield found[0]
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


def wait_for_data(page: Page, timeout_s: float = 45.0) -> None:
    """Return once every chart has data and the live table has rows."""
    page.wait_for_function(CHARTS_HAVE_DATA, arg=list(CHARTS), timeout=timeout_s * 1000)
    page.wait_for_function(
        "document.querySelectorAll('#events tr').length > 0", timeout=timeout_s * 1000
    )


def settle(page: Page, seconds: float = 1.0) -> None:
    """Let the chart animations finish (Chart.js animates each update for 0.6 s)."""
    page.wait_for_timeout(seconds * 1000)
