"""``backbeat batch ...``: the jobs run on a schedule over the lake and the warehouse (cron, a
Kubernetes CronJob, or ``batch run --every 1h``), each idempotent: run twice, same result.

``load-hour``, ``dedup``, ``compact`` and ``run`` are here; ``compact-lake`` (``lake.py``) and
``model`` (``warehouse.py``) share the ``--lake``/``--warehouse`` flags defined below.

Next: ``backbeat.warehouse`` (the jobs), ``backbeat.sinks.lake.compact`` (``compact-lake``).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from backbeat.commands.common import OPTS, console, emit, guard, settings
from backbeat.errors import ConfigError

if TYPE_CHECKING:
    from backbeat.events.schema import Topic
    from backbeat.warehouse.catalog import Warehouse

batch_app = typer.Typer(
    help="Batch jobs over the lake and the Iceberg warehouse (idempotent; for cron).",
    no_args_is_help=True,
)

LakeUrl = Annotated[str, typer.Option("--lake", help="The lake: a folder or s3://bucket/prefix.")]
LakeOptions = Annotated[
    list[str] | None,
    typer.Option("--lake-option", help="endpoint=http://host:port or region=... (repeatable)."),
]
WarehouseUri = Annotated[
    str | None,
    typer.Option(
        "--warehouse",
        help="A pyiceberg catalog URI (sqlite:///..., postgresql://..., http(s)://... REST, "
        "thrift://... Hive); default a SQLite catalog in the data folder.",
    ),
]
WarehouseOptions = Annotated[
    list[str] | None,
    typer.Option("--warehouse-option", help="A catalog property KEY=VALUE (repeatable)."),
]
Topics = Annotated[
    list[str] | None, typer.Option("--topic", help="Only this topic (repeatable; default all).")
]
_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    """``KEY=VALUE`` flags as a dict.

    Raises:
        ConfigError: a value without ``=``.
    """
    found = {}
    for value in values or []:
        key, equals, rest = value.partition("=")
        if not (equals and key):
            raise ConfigError(f"{flag} {value!r}: write it as KEY=VALUE")
        found[key] = rest
    return found


def duration(value: str, flag: str) -> timedelta:
    """``90s``, ``15m``, ``1h``, ``7d``.

    Raises:
        ConfigError: anything else.
    """
    found = _DURATION.fullmatch(value.strip())
    if found is None:
        raise ConfigError(f"{flag} {value!r}: a duration such as 90s, 15m, 1h or 7d")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


def topics_of(names: list[str] | None) -> tuple[Topic, ...]:
    """``--topic`` values as topics (all four when none).

    Raises:
        ConfigError: an unknown topic.
    """
    from backbeat.commands.common import topic
    from backbeat.events.schema import Topic

    return tuple(topic(n) for n in names) if names else tuple(Topic)


def open_warehouse(
    lake: str, lake_options: list[str] | None, uri: str | None, options: list[str] | None
) -> Warehouse:
    """The warehouse the flags name.

    Raises:
        ConfigError: a bad flag, a lake or catalog that cannot be opened, pyiceberg missing.
    """
    from backbeat.sinks.lake.layout import Lake
    from backbeat.warehouse.catalog import Warehouse

    opened = Lake.open(lake, pairs(lake_options, "--lake-option"))
    return Warehouse.open(opened, uri, pairs(options, "--warehouse-option"), settings().store)


def _hour(year: int, month: int, day: int, hour: int) -> int:
    from backbeat.warehouse.hours import hour_of

    return hour_of(year, month, day, hour)


@batch_app.command("load-hour")
def load_hour(
    lake: LakeUrl,
    year: Annotated[int, typer.Option(help="UTC year of the hour.")],
    month: Annotated[int, typer.Option(min=1, max=12)],
    day: Annotated[int, typer.Option(min=1, max=31)],
    hour: Annotated[int, typer.Option(min=0, max=23)],
    topic: Topics = None,
    warehouse: WarehouseUri = None,
    lake_option: LakeOptions = None,
    warehouse_option: WarehouseOptions = None,
) -> None:
    """Load one event hour from the lake into the staging tables (replacing that hour)."""
    from backbeat.warehouse import jobs
    from backbeat.warehouse.load import load_hour as load

    def body() -> None:
        wh = open_warehouse(lake, lake_option, warehouse, warehouse_option)
        number = _hour(year, month, day, hour)
        loaded = [load(wh, t, number) for t in topics_of(topic)]
        jobs.record(wh, [item.done() for item in loaded])
        emit(
            {"hour": number, "topics": {x.topic.value: x.rows for x in loaded}},
            [f"{x.topic.value}: {x.rows:,} rows from {x.files} files" for x in loaded],
        )

    guard(body)


@batch_app.command()
def dedup(
    lake: LakeUrl,
    warehouse: WarehouseUri = None,
    lake_option: LakeOptions = None,
    warehouse_option: WarehouseOptions = None,
) -> None:
    """De-duplicate every listen hour loaded since its last de-duplication into ``listens``."""
    from backbeat.warehouse import jobs
    from backbeat.warehouse.dedup import dedup_hour
    from backbeat.warehouse.run import stale_gold

    def body() -> None:
        wh = open_warehouse(lake, lake_option, warehouse, warehouse_option)
        done = [dedup_hour(wh, hour, fp) for hour, fp in stale_gold(wh)]
        jobs.record(wh, done)
        rows = sum(d.rows for d in done)
        emit({"hours": len(done), "rows": rows}, f"{len(done)} hours, {rows:,} distinct listens")

    guard(body)


@batch_app.command()
def compact(
    lake: LakeUrl,
    warehouse: WarehouseUri = None,
    keep: Annotated[str, typer.Option(help="Snapshots kept for time travel.")] = "7d",
    orphan_age: Annotated[str, typer.Option(help="Unreferenced files older than this go.")] = "1h",
    lake_option: LakeOptions = None,
    warehouse_option: WarehouseOptions = None,
) -> None:
    """Compact each hour of the warehouse tables to one file, expire snapshots, drop orphans."""
    from backbeat.warehouse.catalog import GOLD
    from backbeat.warehouse.maintain import tidy

    def body() -> None:
        wh = open_warehouse(lake, lake_option, warehouse, warehouse_option)
        kept, age = duration(keep, "--keep"), duration(orphan_age, "--orphan-age")
        names = [n for n in [*(t.value for t in topics_of(None)), GOLD] if wh.exists(n)]
        tidied = [tidy(wh, name, kept, age) for name in names]
        emit(
            {"tables": [t.__dict__ for t in tidied]},
            [
                f"{t.table}: {t.hours_compacted} hours compacted, files {t.files_before} -> "
                f"{t.files_after}, {t.snapshots_expired} snapshots expired, "
                f"{t.orphans_deleted} orphans deleted"
                for t in tidied
            ],  # fmt: skip
        )

    guard(body)


@batch_app.command()
def run(
    lake: LakeUrl,
    warehouse: WarehouseUri = None,
    grace: Annotated[
        str, typer.Option(help="An hour is finished this long after its end.")
    ] = "15m",
    keep: Annotated[str, typer.Option(help="Snapshots kept for time travel.")] = "7d",
    every: Annotated[str | None, typer.Option(help="Run again every DURATION (e.g. 1h).")] = None,
    topic: Topics = None,
    lake_option: LakeOptions = None,
    warehouse_option: WarehouseOptions = None,
) -> None:
    """Catch up: load, de-duplicate and compact every finished hour not yet done."""
    from backbeat.ui.progress import StatusLine
    from backbeat.warehouse.run import catch_up

    def body() -> None:
        wh = open_warehouse(lake, lake_option, warehouse, warehouse_option)
        late, kept = duration(grace, "--grace"), duration(keep, "--keep")
        pause = duration(every, "--every") if every else None
        while True:
            with StatusLine(console, enabled=not OPTS.json, description="catching up") as line:
                report = catch_up(
                    wh, int(datetime.now(UTC).timestamp() * 1000), grace=late, keep=kept,
                    topics=topics_of(topic),
                    progress=lambda step, done, total: line.advance(0, f"{step} {done}/{total}"),
                )  # fmt: skip
            emit(report.as_dict(), f"{report.loaded} hours loaded, {report.deduplicated} "
                 f"de-duplicated in {report.seconds:.1f}s")  # fmt: skip
            if pause is None:
                return
            time.sleep(pause.total_seconds())

    guard(body)
