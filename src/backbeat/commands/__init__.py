"""The ``backbeat`` command line: thin commands over the library, one module each.

Each command parses flags, builds settings, calls one library function (most often in
``backbeat.wiring``) and renders the result (rich for people, ``--json`` for machines). Any
:class:`~backbeat.errors.BackbeatError` becomes one line on stderr and exit code 1, and so
does a usage error such as a bad flag value (``usage.py``); ``--debug`` shows tracebacks.
Ctrl-C finishes and commits the batch in flight. This module only assembles the app; the
command modules import nothing from it.

Next: ``stream.py``, ``replay.py``, ``demo.py``, ``query.py``, ``serve.py``, ``simulate.py``,
``kafka.py``, ``lake.py``, ``common.py`` (what they share), ``usage.py`` (the grammar around Typer).
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from backbeat import __version__
from backbeat.commands import (
    batch,
    demo,
    health,
    kafka,
    lake,
    query,
    recommend,
    replay,
    serve,
    simulate,
    stream,
    warehouse,
)
from backbeat.commands.common import OPTS, emit, guard, settings
from backbeat.commands.usage import BackbeatGroup
from backbeat.observe import logs

app = typer.Typer(
    cls=BackbeatGroup,
    name="backbeat",
    help="Real-time analytics for a music streaming service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


@app.callback()
def _root(
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    log_level: Annotated[
        LogLevel | None, typer.Option(help="Logging level (default WARNING).")
    ] = None,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(help="Log lines as text, or json: one object per line (BACKBEAT_LOG_FORMAT)."),
    ] = None,
) -> None:
    """backbeat: simulate, stream, aggregate in event time, and query a music service."""
    OPTS.json, OPTS.debug = json_output, debug
    current = guard(settings)
    level = "DEBUG" if debug else (log_level or current.log_level)
    logs.configure(level, "json" if (log_format or current.log_format) == "json" else "text")


@app.command()
def version() -> None:
    """Print the version."""
    emit({"version": __version__}, f"backbeat {__version__}")


app.command()(simulate.simulate)
app.command()(stream.stream)
app.command()(replay.replay)
app.command()(query.query)
app.command()(demo.demo)
app.command()(serve.serve)
app.command()(health.health)
app.command()(kafka.produce)
app.add_typer(kafka.topics_app, name="topics")
batch.batch_app.command("compact-lake")(lake.compact_lake)
batch.batch_app.command("model")(warehouse.model)
app.add_typer(batch.batch_app, name="batch")
app.add_typer(recommend.recommend_app, name="recommend")

_GLOBAL_FLAGS = ("--json", "--debug")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. ``--json`` and ``--debug`` work before or after the command
    (``backbeat query top-songs --json`` = ``backbeat --json query top-songs``)."""
    args = sys.argv[1:] if argv is None else argv
    flags = [a for a in args if a in _GLOBAL_FLAGS]
    app(args=flags + [a for a in args if a not in _GLOBAL_FLAGS])
