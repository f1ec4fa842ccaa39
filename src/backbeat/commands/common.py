"""What every command shares: settings from the environment, one-line errors, output.

:func:`guard` runs a command's body and turns any :class:`~backbeat.errors.BackbeatError` (and
any other failure) into one line on stderr and exit code 1 (``--debug`` shows the
traceback); :func:`emit` and :func:`emit_table` write for people (rich) or machines
(``--json``). What they print for people is text, never markup, with control characters made
visible (``backbeat.ui.text``): a result or a message may quote any value, event text included.

Next: the command modules of this package.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

import pyarrow as pa
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from backbeat.errors import BackbeatError, ConfigError
from backbeat.events.schema import Topic, parse_topic
from backbeat.settings import Settings
from backbeat.ui.text import plain

if TYPE_CHECKING:
    from backbeat.serve.auth import AuthConfig
    from backbeat.simulate.simulator import SimulatorSettings
    from backbeat.transport.kafka.settings import KafkaSettings

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")


class _Opts:
    json: bool = False
    debug: bool = False


OPTS = _Opts()
"""The global flags (``--json``, ``--debug``), set by the root callback."""


def settings() -> Settings:
    """Settings from the environment; a bad BACKBEAT_* value is a one-line ConfigError."""
    try:
        return Settings()
    except ValidationError as exc:
        problem = exc.errors()[0]
        name = "BACKBEAT_" + str(problem["loc"][0]).upper() if problem["loc"] else "BACKBEAT_*"
        raise ConfigError(f"{name}={problem.get('input')!r}: {problem['msg']}") from None


def api_token(current: Settings) -> AuthConfig:
    """The web server's login settings: tokens, trusted proxies, allowed hosts, limits.

    Raises:
        ConfigError: an inconsistent combination (a previous token without a current one).
    """
    from backbeat.serve.auth import AuthConfig

    return AuthConfig.from_settings(current)


def kafka_settings(bootstrap_servers: str | None, topic_prefix: str | None) -> KafkaSettings:
    """Kafka settings: flags > ``BACKBEAT_KAFKA_*`` > defaults; a bad value is one line.

    Raises:
        MissingExtraError: confluent-kafka is not installed.
    """
    from backbeat.transport.kafka.settings import require_client

    require_client()
    from backbeat.transport.kafka.settings import KafkaSettings

    flags: dict[str, Any] = {}
    if bootstrap_servers is not None:
        flags["bootstrap_servers"] = bootstrap_servers
    if topic_prefix is not None:
        flags["topic_prefix"] = topic_prefix
    try:
        return KafkaSettings(**flags)
    except ValidationError as exc:
        problem = exc.errors()[0]
        name = "BACKBEAT_KAFKA_" + str(problem["loc"][0]).upper() if problem["loc"] else "?"
        raise ConfigError(f"{name}: {problem['msg']}") from None


def store_option(option: str | None) -> str | None:
    """``--store`` as given, refused when it carries a password: a process listing (``ps``)
    shows every argument to every user of the machine.

    Raises:
        ConfigError: a URL with a password.
    """
    if option is not None and urlsplit(option).password:
        raise ConfigError(
            "--store: a password in the URL would show in the process listing; give it in "
            "PGPASSWORD or ~/.pgpass (or the whole URL in BACKBEAT_STORE) instead"
        )
    return option


def topic(name: str) -> Topic:
    """A backbeat topic by name; ConfigError naming the choices otherwise."""
    found = parse_topic(name)
    if found is None:
        raise ConfigError(f"unknown topic {name!r}: use one of {', '.join(t.value for t in Topic)}")
    return found


def fail(label: str, message: str) -> None:
    """One line on stderr; the message is text, never markup, its control characters (a line
    break included) visible: it may quote any value."""
    err_console.print(Text.assemble((f"{label}: ", "bold red"), plain(message)), soft_wrap=True)


def guard(fn: Callable[[], T]) -> T:
    """Run a command body; turn errors into one line and exit code 1."""
    try:
        return fn()
    except BackbeatError as exc:
        if OPTS.debug:
            raise
        fail("error", str(exc))
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None
    except (OSError, ValueError) as exc:
        if OPTS.debug:
            raise
        fail("error", str(exc))
        raise typer.Exit(1) from None
    except Exception as exc:  # a bug of ours: still one line, with the way to see more
        if OPTS.debug:
            raise
        fail(
            "internal error",
            f"{type(exc).__name__}: {exc} (rerun with --debug for the traceback, and please "
            "report it)",
        )
        raise typer.Exit(1) from None


def parse_time(value: str | None, flag: str) -> datetime | None:
    """An ISO time flag (no zone: UTC)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{flag} {value!r} is not an ISO time such as 2026-01-31T12:00:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(value: str, flag: str) -> timedelta:
    """A duration flag: a whole number and a unit, s, m, h or d (``90s``, ``10m``, ``1h``).

    Raises:
        ConfigError: any other text.
    """
    number, unit = value.strip()[:-1], value.strip()[-1:]
    if not (number.isascii() and number.isdigit()) or unit not in _UNIT_S:
        raise ConfigError(f"{flag} {value!r}: write a duration such as 90s, 10m, 1h or 2d")
    return timedelta(seconds=int(number) * _UNIT_S[unit])


def start_from(value: str) -> Literal["earliest", "latest"] | datetime:
    """``stream --from``: earliest, latest or an ISO time (without a zone: UTC)."""
    if value in ("earliest", "latest"):
        return "earliest" if value == "earliest" else "latest"
    try:
        parsed = parse_time(value, "--from")
    except ConfigError:
        raise ConfigError(
            f"--from {value!r}: use earliest, latest or an ISO time such as 2026-01-31T12:00:00Z"
        ) from None
    assert parsed is not None
    return parsed


IncidentOption = Annotated[
    list[str] | None,
    typer.Option(
        "--incident",
        help="A scheduled spike or drop, WHEN+DURATION:xFACTOR[:platform=P][:country=CC]: "
        "WHEN an ISO time, HH:MM (UTC) or +DURATION after the start; e.g. 12:00+15m:x5, "
        "+1h+30m:x0.2:platform=android (repeatable).",
    ),
]
"""``--incident``, as ``simulate``, ``produce`` and ``demo`` take it."""


def simulator_settings(
    users: int,
    seed: int | None,
    start: str | None,
    end: str | None,
    config: Path | None,
    catalog: Path | None = None,
    incidents: Sequence[str] | None = None,
) -> SimulatorSettings:
    """Simulator settings from the flags `simulate` and `produce` share (default span: 1 h).

    Raises:
        ConfigError: a bad flag value (an ``--incident`` included), in one line.
    """
    from backbeat import wiring

    return wiring.simulator_settings(
        users=users,
        seed=seed,
        start=parse_time(start, "--start"),
        end=parse_time(end, "--end"),
        config=config,
        default_span=timedelta(hours=1),
        catalog=catalog,
        incidents=tuple(incidents or ()),
    )


def emit_table(table: pa.Table, title: str) -> None:
    """A result table: rich for people, a JSON list of rows with ``--json``."""
    if OPTS.json:
        sys.stdout.write(json.dumps(table.to_pylist(), default=str) + "\n")
        return
    console.print(_view(table, title))


def emit_tables(tables: dict[str, tuple[pa.Table, str]]) -> None:
    """Several result tables (``{key: (table, title)}``): one after the other for people, one
    JSON object of row lists by key with ``--json``."""
    if OPTS.json:
        rows = {key: table.to_pylist() for key, (table, _) in tables.items()}
        sys.stdout.write(json.dumps(rows, default=str) + "\n")
        return
    for table, title in tables.values():
        console.print(_view(table, title))


def _view(table: pa.Table, title: str) -> Table:
    """A rich table; every cell is text, never markup, with its control characters visible
    (it may hold any value)."""
    view = Table(title=title, header_style="bold magenta")
    for name in table.column_names:
        view.add_column(name, overflow="fold")
    for row in table.to_pylist():
        view.add_row(*(plain(f"{v:,}" if isinstance(v, int) else v) for v in row.values()))
    return view


def emit(payload: dict[str, Any], human: str | Sequence[str]) -> None:
    """A command's result: for people, ``human`` (one line, or each of a sequence of lines) as
    text, never markup, its control characters visible; a JSON object with ``--json``."""
    if OPTS.json:
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
        return
    for line in [human] if isinstance(human, str) else human:
        console.print(console.highlighter(plain(line)))
