"""Running ``backbeat demo`` as a user would, in a terminal, and reading what it shows.

Shared by the CLI tests (does the live view work?) and ``benchmarks/bench_demo_start.py``
(how soon does it show numbers?).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# A terminal of 120x40 that rich draws into although stdout is a pipe.
TERMINAL_ENV = {"FORCE_COLOR": "0", "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1",
                "COLUMNS": "120", "LINES": "40"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class DemoRun:
    returncode: int
    output: bytes
    first_live_s: float | None
    """Seconds from the start until the view showed a positive rate and the top lists."""


def live_at(seen: bytes) -> bool:
    rates = [int(x.replace(b",", b"")) for x in re.findall(rb"([\d,]+) events/s", seen)]
    return any(r > 0 for r in rates) and b"Top songs" in seen


def demo_terminal(store: Path, *args: str) -> DemoRun:
    """Run ``backbeat demo --store store *args`` to its end, watching its terminal output."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "backbeat", "demo", "--store", str(store), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=os.environ | TERMINAL_ENV,
    )
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    seen, first_live = b"", None
    while proc.poll() is None:
        seen += proc.stdout.read() or b""
        if first_live is None and live_at(seen):
            first_live = time.monotonic() - started
        time.sleep(0.05)
    seen += proc.stdout.read() or b""
    proc.stdout.close()
    return DemoRun(proc.wait(), seen, first_live)
