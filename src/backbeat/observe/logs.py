"""Log lines for people (text) or for a log collector (``--log-format json``: one JSON
object per line, with ``time``, ``level``, ``logger``, ``message`` and any ``extra`` fields).

The CLI calls :func:`configure` once per process; the web server's child process is given
:func:`current` and calls it again, and uvicorn's own loggers follow the same format
(:func:`uvicorn_log_config`). Modules only ever call ``logging.getLogger(__name__)``.

Next: ``backbeat.commands`` (the ``--log-format`` flag), ``backbeat.serve.app``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_current: tuple[str, LogFormat] = ("WARNING", "text")


def configure(level: str, fmt: LogFormat) -> None:
    """Send this process's logs to stderr at ``level`` in ``fmt`` (replacing any earlier
    setup of the root logger)."""
    global _current
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(levelname)s %(name)s %(message)s",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp="time",
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    _current = (level.upper(), fmt)


def current() -> tuple[str, LogFormat]:
    """The level and format :func:`configure` set last (for a child process to repeat)."""
    return _current


def uvicorn_log_config() -> dict[str, Any] | None:
    """uvicorn's ``log_config``: its own (text) setup, or None with JSON so its loggers
    reach the root logger's JSON handler."""
    if _current[1] == "json":
        return None
    from uvicorn.config import LOGGING_CONFIG

    return LOGGING_CONFIG
