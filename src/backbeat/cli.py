"""The ``backbeat`` command line: thin commands over the library.

Each command parses flags, builds settings, calls one library function and renders the result
(rich for people, ``--json`` for machines). Any :class:`~backbeat.errors.BackbeatError` becomes
one line on stderr and exit code 1; ``--debug`` shows tracebacks. Ctrl-C finishes and commits
the batch in flight.

Next: ``backbeat.engine.pipeline`` (stream, demo), ``backbeat.simulate`` (simulate),
``backbeat.serve.queries`` (query).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import pyarrow as pa
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from backbeat import __version__
from backbeat.errors import BackbeatError, ConfigError
from backbeat.events.schema import Topic, parse_topic
from backbeat.settings import Settings
from backbeat.sinks.duckdb_store import DEFAULT_FILE

if TYPE_CHECKING:
    from backbeat.engine.pipeline import RunReport
    from backbeat.serve.hub import CommitHub
    from backbeat.serve.web_process import WebProcess
    from backbeat.simulate.simulator import SimulatorSettings
    from backbeat.sinks.base import BatchStats
    from backbeat.sinks.duckdb_store import DuckDBStore
    from backbeat.transport.kafka.settings import KafkaSettings

    OnBatch = Callable[[BatchStats, RunReport], None]

app = typer.Typer(
    name="backbeat",
    help="Real-time analytics for a music streaming service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)
log = logging.getLogger("backbeat")

T = TypeVar("T")


class _Opts:
    json: bool = False
    debug: bool = False


OPTS = _Opts()


@app.callback()
def _root(
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    log_level: Annotated[
        LogLevel | None, typer.Option(help="Logging level (default WARNING).")
    ] = None,
) -> None:
    """backbeat: simulate, stream, aggregate in event time, and query a music service."""
    OPTS.json, OPTS.debug = json_output, debug
    level = "DEBUG" if debug else (log_level or _guard(_settings).log_level)
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


def _settings() -> Settings:
    """Settings from the environment; a bad BACKBEAT_* value is a one-line ConfigError."""
    try:
        return Settings()
    except ValidationError as exc:
        problem = exc.errors()[0]
        name = "BACKBEAT_" + str(problem["loc"][0]).upper() if problem["loc"] else "BACKBEAT_*"
        raise ConfigError(f"{name}={problem.get('input')!r}: {problem['msg']}") from None


def _kafka_settings(bootstrap_servers: str | None, topic_prefix: str | None) -> KafkaSettings:
    """Kafka settings: flags > ``BACKBEAT_KAFKA_*`` > defaults; a bad value is one line."""
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


def _topic(name: str) -> Topic:
    topic = parse_topic(name)
    if topic is None:
        raise ConfigError(f"unknown topic {name!r}: use one of {', '.join(t.value for t in Topic)}")
    return topic


def _guard(fn: Callable[[], T]) -> T:
    """Run a command body; turn errors into one line and exit code 1."""
    try:
        return fn()
    except BackbeatError as exc:
        if OPTS.debug:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None
    except (OSError, ValueError) as exc:
        if OPTS.debug:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except Exception as exc:  # a bug of ours: still one line, with the way to see more
        if OPTS.debug:
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {exc} (rerun with --debug for "
            "the traceback, and please report it)",
            highlight=False,
        )
        raise typer.Exit(1) from None


def _parse_time(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{flag} {value!r} is not an ISO time such as 2026-01-31T12:00:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _start_from(value: str) -> Literal["earliest", "latest"] | datetime:
    """``stream --from``: earliest, latest or an ISO time (without a zone: UTC)."""
    if value in ("earliest", "latest"):
        return "earliest" if value == "earliest" else "latest"
    try:
        parsed = _parse_time(value, "--from")
    except ConfigError:
        raise ConfigError(
            f"--from {value!r}: use earliest, latest or an ISO time such as 2026-01-31T12:00:00Z"
        ) from None
    assert parsed is not None
    return parsed


def simulator_settings(
    users: int, seed: int | None, start: str | None, end: str | None, config: Path | None
) -> SimulatorSettings:
    """Simulator settings from the flags `simulate` and `produce` share (default span: 1 h)."""
    from backbeat import wiring

    return wiring.simulator_settings(
        users=users,
        seed=seed,
        start=_parse_time(start, "--start"),
        end=_parse_time(end, "--end"),
        config=config,
        default_span=timedelta(hours=1),
    )


def _emit_table(table: pa.Table, title: str) -> None:
    if OPTS.json:
        sys.stdout.write(json.dumps(table.to_pylist(), default=str) + "\n")
        return
    view = Table(title=title, header_style="bold magenta")
    for name in table.column_names:
        view.add_column(name, overflow="fold")
    for row in table.to_pylist():
        view.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()))
    console.print(view)


def _emit(payload: dict[str, Any], human: str) -> None:
    if OPTS.json:
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
    else:
        console.print(human)


# ---------------------------------------------------------------------------- version


@app.command()
def version() -> None:
    """Print the version."""
    _emit({"version": __version__}, f"backbeat {__version__}")


# ---------------------------------------------------------------------------- simulate


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Folder for <topic>.jsonl files.")] = Path("events"),
    users: Annotated[int, typer.Option(min=1, help="Number of users at the start.")] = 10_000,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: config's seed).")] = None,
    start: Annotated[
        str | None, typer.Option(help="Event-time start, ISO (default: config or today-1d).")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Event-time end, ISO (default: start + 1 h).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="eventsim JSON config file.")] = None,
    rate: Annotated[
        float | None, typer.Option(min=1, help="Pace output to this many events/s.")
    ] = None,
) -> None:
    """Simulate a music service and write one JSONL file per topic."""
    from backbeat import wiring

    def body() -> None:
        settings = simulator_settings(users, seed, start, end, config)
        counts = wiring.write_jsonl_run(settings, out, rate=rate, progress=not OPTS.json)
        total = sum(counts.values())
        _emit(
            {"out": str(out), "events": total, "per_topic": counts},
            f"wrote {total:,} events to {out}/ "
            + ", ".join(f"{t} {n:,}" for t, n in counts.items()),
        )

    _guard(body)


# ---------------------------------------------------------------------------- stream


@app.command()
def stream(
    input: Annotated[
        list[Path] | None, typer.Option("--input", "-i", help="JSONL file(s) or folder(s).")
    ] = None,
    bootstrap_servers: Annotated[
        str | None, typer.Option(help="Read from Kafka at host:port instead of files.")
    ] = None,
    topics: Annotated[
        list[str] | None,
        typer.Option("--topics", help="Kafka: backbeat topics (default all four)."),
    ] = None,
    topic_prefix: Annotated[
        str | None, typer.Option(help="Kafka: prefix of the cluster's topic names.")
    ] = None,
    group: Annotated[
        str | None, typer.Option(help="Kafka: join this consumer group (default: assign all).")
    ] = None,
    from_: Annotated[
        str,
        typer.Option(
            "--from",
            help="Kafka: where to start without a stored position: earliest, latest or an ISO "
            "time (the first record stamped at or after it; no zone = UTC).",
        ),
    ] = "earliest",
    until_end: Annotated[
        bool, typer.Option(help="Kafka: stop once every partition is read to its end.")
    ] = False,
    store: Annotated[
        Path | None, typer.Option(help="Store folder (default ./backbeat-data).")
    ] = None,
    csv: Annotated[
        Path | None, typer.Option(help="Append final genre windows to this CSV.")
    ] = None,
    max_events: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many events.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(min=0, help="Stop after this many seconds.")
    ] = None,
    follow: Annotated[
        bool, typer.Option(help="Keep waiting for new lines at the end of input.")
    ] = False,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Events per micro-batch at most.")
    ] = None,
    lateness: Annotated[
        float | None, typer.Option(min=0, help="Allowed lateness, seconds (default 120).")
    ] = None,
    serve_web: Annotated[
        bool,
        typer.Option(
            "--serve", help="Also serve the API and dashboard of the store (--host, --port)."
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="--serve: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="--serve: port.")] = 8000,
) -> None:
    """Stream JSONL files or Kafka into the store, exactly once (resumes where it stopped)."""
    from backbeat.engine.pipeline import EngineSettings, Pipeline
    from backbeat.sinks.csv_sink import CsvSink
    from backbeat.sinks.duckdb_store import DuckDBStore
    from backbeat.transport.base import Source
    from backbeat.transport.jsonl import JsonlSource, discover
    from backbeat.ui.progress import StatusLine

    def body() -> None:
        settings = _settings()
        engine = EngineSettings(
            lateness_ms=int(lateness * 1000) if lateness is not None else settings.lateness_ms,
            max_batch_events=batch_size or settings.max_batch_events,
        )
        if (input is None) == (bootstrap_servers is None):
            raise ConfigError("give either --input (JSONL files) or --bootstrap-servers (Kafka)")
        if serve_web and group is not None:
            raise ConfigError(
                "--serve needs the store to itself; with --group, run `backbeat serve --store` "
                "next to the members"
            )
        start = _start_from(from_)
        source: Source
        dead_letters = None
        if input is not None:
            source = JsonlSource(discover(input), follow=follow)
        else:
            from backbeat.transport.kafka.dead_letters import DeadLetterProducer
            from backbeat.transport.kafka.source import KafkaSource

            kafka = _kafka_settings(bootstrap_servers, topic_prefix)
            names = [kafka.topic(_topic(t).value) for t in topics or list(Topic)]
            source = KafkaSource(kafka, names, group=group, start=start, stop_at_end=until_end)
            dead_letters = DeadLetterProducer(kafka)
        # Members of a consumer group share one store: each opens it per commit.
        db = DuckDBStore.in_dir(store or settings.store, shared=group is not None)
        status = StatusLine(console, enabled=not OPTS.json)
        web, hub = _web_server(db, settings, host, port) if serve_web else (None, None)
        try:
            pipeline = Pipeline(
                source,
                db,
                engine,
                csv=CsvSink(csv) if csv else None,
                on_batch=_publishing(status.on_batch, hub),
                before_commit=dead_letters.before_commit if dead_letters else None,
            )
            try:
                if web is not None:
                    _start_web(web)
                with status:
                    report = pipeline.run(max_events=max_events, timeout=timeout)
            finally:
                if web is not None:
                    web.stop()
                pipeline.close()
        finally:
            db.close()
            if dead_letters is not None:
                dead_letters.close()
        _emit(
            {
                "batches": report.batches,
                "events_in": report.events_in,
                "accepted": report.accepted,
                "duplicates": report.duplicates,
                "late": report.late,
                "dead": report.dead,
                "seconds": round(report.seconds, 3),
                "stopped_by": report.stopped_by,
            },
            f"{report.events_in:,} events in {report.seconds:.1f}s "
            f"({report.events_in / max(report.seconds, 1e-9):,.0f}/s): accepted {report.accepted:,}, "
            f"duplicates {report.duplicates:,}, late {report.late:,}, dead letters {report.dead:,} "
            f"[{report.stopped_by}]",
        )

    _guard(body)


# ---------------------------------------------------------------------------- query


class QueryName(StrEnum):
    TOP_SONGS = "top-songs"
    TOP_ARTISTS = "top-artists"
    GENRE_WINDOWS = "genre-windows"
    ENGAGEMENT = "engagement"
    ACTIVE_USERS = "active-users"
    DEAD_LETTERS = "dead-letters"


@app.command()
def query(
    name: Annotated[QueryName, typer.Argument(help="What to show.")],
    store: Annotated[
        Path | None, typer.Option(help="Store folder (default ./backbeat-data).")
    ] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Event-time start, ISO.")] = None,
    to: Annotated[str | None, typer.Option(help="Event-time end (exclusive), ISO.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows at most.")] = 10,
    by: Annotated[str, typer.Option(help="engagement: genre|platform|country|mood.")] = "genre",
) -> None:
    """Query the results in a store."""
    from backbeat.serve import queries
    from backbeat.sinks.duckdb_store import DuckDBStore

    def body() -> None:
        folder = store or _settings().store
        path = folder / DEFAULT_FILE
        if not path.exists():
            raise ConfigError(
                f"no store in {str(folder)!r}: run `backbeat stream` or `backbeat demo` first"
            )
        # Shared: group members hold the file only while they commit; wait for them briefly.
        db = DuckDBStore(path, read_only=True, shared=True, lock_timeout_s=5.0)
        start, end = _parse_time(from_, "--from"), _parse_time(to, "--to")
        span = queries.TimeRange(
            int(start.timestamp() * 1000) if start else None,
            int(end.timestamp() * 1000) if end else None,
        )
        try:
            match name:
                case QueryName.TOP_SONGS:
                    table = queries.top_songs(db, span, limit)
                case QueryName.TOP_ARTISTS:
                    table = queries.top_artists(db, span, limit)
                case QueryName.GENRE_WINDOWS:
                    table = queries.genre_windows(db, span, limit)
                case QueryName.ENGAGEMENT:
                    table = queries.engagement(db, span, by, limit)
                case QueryName.ACTIVE_USERS:
                    table = queries.active_users(db, span, limit)
                case QueryName.DEAD_LETTERS:
                    table = queries.dead_letters(db, limit)
        finally:
            db.close()
        _emit_table(table, name.value)

    _guard(body)


# ---------------------------------------------------------------------------- demo


@app.command()
def demo(
    duration: Annotated[
        float | None, typer.Option(min=1, help="Seconds to run (default: until Ctrl-C).")
    ] = None,
    users: Annotated[int, typer.Option(min=1, help="Simulated users.")] = 50_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    speed: Annotated[
        float, typer.Option(min=1, help="Event-time seconds per wall-clock second.")
    ] = 300.0,
    store: Annotated[
        Path | None, typer.Option(help="Store folder (default ./backbeat-data/demo).")
    ] = None,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(help="Run the producer and the stream through Kafka at host:port."),
    ] = None,
    topic_prefix: Annotated[
        str | None, typer.Option(help="Kafka: prefix of the cluster's topic names.")
    ] = None,
    host: Annotated[str, typer.Option(help="Dashboard: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Dashboard: port.")] = 8000,
    no_web: Annotated[
        bool, typer.Option("--no-web", help="Terminal view only: no dashboard and API.")
    ] = False,
) -> None:
    """Simulator -> engine -> store with a live terminal view and the web dashboard: in one
    process, or through a Kafka broker (producer thread -> topics -> engine) with
    --bootstrap-servers."""
    from backbeat import wiring
    from backbeat.engine.pipeline import EngineSettings, Pipeline
    from backbeat.sinks.duckdb_store import DuckDBStore
    from backbeat.ui.live import LiveView

    def body() -> None:
        settings = _settings()
        folder = store or settings.store / "demo"
        kafka = (
            None if bootstrap_servers is None else _kafka_settings(bootstrap_servers, topic_prefix)
        )
        db = DuckDBStore.in_dir(folder)  # fails clearly if another process holds it
        ours = ("simulator:",) + (
            () if kafka is None else tuple(f"kafka:{kafka.topic(t.value)}:" for t in Topic)
        )
        if any(not p.startswith(ours) for p in db.load_state().partitions):
            db.close()
            raise ConfigError(
                f"{str(folder)!r} holds results of `backbeat stream`; the demo starts from an "
                "empty store: give --store another folder"
            )
        db.reset()  # a demo always starts from scratch
        through = (
            None if kafka is None else wiring.KafkaDemo(kafka, users=users, seed=seed, speed=speed)
        )
        source = (
            through.source if through else wiring.live_source(users=users, seed=seed, speed=speed)
        )
        where = f" · via Kafka {kafka.bootstrap_servers}" if kafka else ""
        view = LiveView(
            db,
            err_console if OPTS.json else console,  # --json: stdout carries the summary only
            title=f"backbeat demo · {users:,} users · ×{speed:g} event time{where}",
        )
        engine = EngineSettings(lateness_ms=settings.lateness_ms, max_future_ms=None)
        web, hub = (None, None) if no_web else _web_server(db, settings, host, port)
        pipeline = Pipeline(
            source,
            db,
            engine,
            on_batch=_publishing(view.on_batch, hub),
            before_commit=through.before_commit if through else None,
        )
        delivered = None
        try:
            if web is not None:
                _start_web(web)
            if through is not None:
                through.start(on_error=pipeline.stop)
            with view:
                report = pipeline.run(timeout=duration)
        finally:
            try:
                delivered = through.stop() if through else None  # flushes the producer
            finally:
                if web is not None:
                    web.stop()
                pipeline.close()
                db.close()
        payload: dict[str, Any] = {
            "events_in": report.events_in,
            "accepted": report.accepted,
            "seconds": round(report.seconds, 3),
            "stopped_by": report.stopped_by,
            "store": str(folder),
        }
        human = f"demo done: {report.events_in:,} events in {report.seconds:.0f}s"
        if delivered is not None:
            payload |= {"delivered": delivered.delivered, "failed": delivered.failed}
            human += f" ({delivered.delivered:,} delivered to Kafka, {delivered.failed:,} failed)"
        _emit(
            payload,
            f"{human}; results in {folder}/ (try: backbeat query top-songs --store {folder})",
        )

    _guard(body)


# ---------------------------------------------------------------------------- serve


def _web_server(
    db: DuckDBStore, settings: Settings, host: str, port: int
) -> tuple[WebProcess, CommitHub]:
    """The API and dashboard over the store this process writes, in a child process (its own
    GIL); publish each committed batch id to the hub."""
    from backbeat.serve.web_process import process_server

    return process_server(db, host, port, _api_token(settings))


def _api_token(settings: Settings) -> str | None:
    return settings.api_token.get_secret_value() if settings.api_token else None


def _publishing(show: OnBatch, hub: CommitHub | None) -> OnBatch:
    """``show`` after each batch and, when serving, its id to the dashboards' live streams."""
    if hub is None:
        return show

    def on_batch(stats: BatchStats, report: RunReport) -> None:
        hub.publish(stats.batch_id)
        show(stats, report)

    return on_batch


def _start_web(web: WebProcess) -> None:
    """Start the web process, say where it is, and let it go first when the CPU is busy."""
    from backbeat.serve.web_process import yield_to_web

    web.start()
    err_console.print(f"dashboard: {web.url}", highlight=False, soft_wrap=True)
    yield_to_web()


@app.command()
def serve(
    store: Annotated[
        Path | None, typer.Option(help="Store folder (default: BACKBEAT_STORE or ./backbeat-data).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port.")] = 8000,
) -> None:
    """The REST API and the live dashboard over a store (Ctrl-C stops).

    Reads a store that is idle or written by `backbeat stream --group` members (they hold
    the file only while committing); `backbeat demo` serves its own store itself.
    """
    from backbeat.serve.app import file_server

    def body() -> None:
        settings = _settings()
        web, watcher = file_server(store or settings.store, host, port, _api_token(settings))
        watcher.start()
        err_console.print(f"dashboard: {web.url} (API docs: {web.url}docs)", highlight=False)
        try:
            web.run()
        finally:
            watcher.stop()

    _guard(body)


import backbeat.cli_kafka  # noqa: E402, F401 - registers `topics` and `produce`

_GLOBAL_FLAGS = ("--json", "--debug")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. ``--json`` and ``--debug`` work before or after the command
    (``backbeat query top-songs --json`` = ``backbeat --json query top-songs``)."""
    args = sys.argv[1:] if argv is None else argv
    flags = [a for a in args if a in _GLOBAL_FLAGS]
    app(args=flags + [a for a in args if a not in _GLOBAL_FLAGS])


if __name__ == "__main__":  # `python -m backbeat.cli`: run the imported module's app, the
    from backbeat.cli import main as _main  # one that backbeat.cli_kafka registers into

    _main()
