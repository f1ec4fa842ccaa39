"""Running ``backbeat`` in a pseudo-terminal, as a user's shell does, and keeping every byte
the terminal receives.

Attached to a pty (a wide one: :data:`COLUMNS` x :data:`LINES`, ``TERM=xterm-256color``),
rich sees a real terminal and writes what it writes for people: colours, cursor moves, the
live view's redraws. :func:`run_in_terminal` returns those bytes as they are, so a test can
tell a value rich shows as text from one that reaches the terminal as a control sequence.

Next: ``tests/cli/test_terminal_text.py`` (hostile event text in every view).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass

COLUMNS, LINES = 240, 50
_RICH_HINTS = ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "CI")
_CSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


@dataclass(frozen=True, slots=True)
class TerminalRun:
    returncode: int
    output: bytes
    """Every byte the terminal received (stdout and stderr), rich's sequences included."""

    @property
    def text(self) -> str:
        """The output decoded, with the CSI sequences (styles, cursor moves) taken out: what
        a person reads. Only for finding text: a control sequence in the data is looked for
        in :attr:`output`."""
        return _CSI.sub("", self.output.decode("utf-8", errors="replace"))

    def lines(self) -> list[str]:
        """The non-blank lines of :attr:`text`."""
        return [line for line in self.text.splitlines() if line.strip()]


def run_in_terminal(
    *args: str,
    stop_when: Callable[[bytes], bool] | None = None,
    columns: int = COLUMNS,
    timeout_s: float = 90.0,
) -> TerminalRun:
    """Run ``python -m backbeat *args`` in a new pseudo-terminal of ``columns`` x
    :data:`LINES` until it exits.

    ``stop_when``: called with the output so far whenever more arrives; once it is true the
    command gets SIGINT (Ctrl-C) and the run goes on until it exits. ``timeout_s`` is a
    deadline for a command that hangs (it is killed and the test fails), not a wait.
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in _RICH_HINTS} | {
        "TERM": "xterm-256color",
        "COLUMNS": str(columns),
        "LINES": str(LINES),
    }
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "backbeat", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,  # the pty becomes its controlling terminal
        )
    finally:
        os.close(slave)
    seen = bytearray()
    interrupted = False
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"backbeat {' '.join(args)!r} hung: {bytes(seen[-3000:])!r}")
            ready, _, _ = select.select([master], [], [], 0.1)
            if not ready:
                if proc.poll() is not None:
                    break  # exited, and nothing is left to read
                continue
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if stop_when is not None and not interrupted and stop_when(bytes(seen)):
                proc.send_signal(signal.SIGINT)
                interrupted = True
        return TerminalRun(proc.wait(timeout=max(1.0, deadline - time.monotonic())), bytes(seen))
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
