"""``backbeat batch ...``: the jobs run on a schedule over the lake and the warehouse (cron, a
Kubernetes CronJob, or ``batch run --every 1h``), each idempotent: run twice, same result.

``load-hour``, ``dedup``, ``compact`` and ``run`` are here; ``compact-lake`` (``lake.py``) and
``model`` (``warehouse.py``) share the ``--lake``/``--warehouse`` flags defined below.

Next: ``backbeat.warehouse`` (the jobs), ``backbeat.sinks.lake.compact`` (``compact-lake``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from backbeat.commands.common import OPTS, console, duration, emit, guard
from backbeat.commands.warehouse import (
    LakeOption,
    LakeOptions,
    WarehouseOption,
    WarehouseOptions,
    open_warehouse,
)

if TYPE_CHECKING:
    from backbeat.events.schema import Topic

batch_app = typer.Typer(
    help="Batch jobs over the lake and the Iceberg warehouse (idempotent; for cron).",
    no_args_is_help=True,
)

Topics = Annotated[
    list[str] | None, typer.Option("--topic", help="Only this topic (repeatable; default all).")
]


def topics_of(names: list[str] | None) -> tuple[Topic, ...]:
    """``--topic`` values as topics (all four when none).

    Raises:
        ConfigError: an unknown topic.
    """
    from backbeat.commands.common import topic
    from backbeat.events.schema import Topic

    return tuple(topic(n) for n in names) if names else tuple(Topic)


@batch_app.command("load-hour")
def load_hour(
    year: Annotated[int, typer.Option(help="UTC year of the hour.")],
    month: Annotated[int, typer.Option(min=1, max=12)],
    day: Annotated[int, typer.Option(min=1, max=31)],
    hour: Annotated[int, typer.Option(min=0, max=23)],
    lake: LakeOption = None,
    topic: Topics = None,
    warehouse: WarehouseOption = None,
    lake_option: LakeOptions = None,
    warehouse_option: WarehouseOptions = None,
) -> None:
    """Load one event hour from the lake into the staging tables (replacing that hour)."""
    from backbeat.sinks.lake.layout import hour_of
    from backbeat.warehouse import jobs
    from backbeat.warehouse.load import load_hour as load

    def body() -> None:
        wh = open_warehouse(lake, lake_option, warehouse, warehouse_option)
        number = hour_of(year, month, day, hour)
        loaded = [load(wh, t, number) for t in topics_of(topic)]
        jobs.record(wh, [item.done() for item in loaded])
        emit(
            {"hour": number, "topics": {x.topic.value: x.rows for x in loaded}},
            [f"{x.topic.value}: {x.rows:,} rows from {x.files} files" for x in loaded],
        )

    guard(body)


@batch_app.command()
def dedup(
    lake: LakeOption = None,
    warehouse: WarehouseOption = None,
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
    lake: LakeOption = None,
    warehouse: WarehouseOption = None,
    keep: Annotated[str, typer.Option(help="Snapshots kept for time travel.")] = "7d",
    orphan_age: Annotated[str, typer.Option(help="Unreferenced files older than this go.")] = "1h",
    lake_option: LakeOptions = None,
    warehouse_option: WarehouseOptions = None,
) -> None:
    """Compact each hour of the warehouse tables to one file, expire snapshots, drop orphans."""
    from backbeat.warehouse.catalog import GOLD
    from backbeat.warehouse.jobs import TABLE
    from backbeat.warehouse.maintain import tidy

    def body() -> None:
        wh = open_warehouse(lake, lake_option, warehouse, warehouse_option)
        kept, age = duration(keep, "--keep"), duration(orphan_age, "--orphan-age")
        names = [n for n in [*(t.value for t in topics_of(None)), GOLD, TABLE] if wh.exists(n)]
        tidied = [tidy(wh, name, kept, age) for name in names]
        emit(
            {"tables": [t.__dict__ for t in tidied]},
            [
                f"{t.table}: {t.hours_compacted} hours compacted, files {t.files_before} -> "
                f"{t.files_after}, {t.snapshots_expired} snapshots expired, "
                f"{t.orphans_deleted} orphans deleted"
                for t in tidied
            ],
        )

    guard(body)


@batch_app.command()
def run(
    lake: LakeOption = None,
    warehouse: WarehouseOption = None,
    grace: Annotated[
        str, typer.Option(help="An hour is finished this long after its end.")
    ] = "15m",
    keep: Annotated[str, typer.Option(help="Snapshots kept for time travel.")] = "7d",
    every: Annotated[str | None, typer.Option(help="Run again every DURATION (e.g. 1h).")] = None,
    model: Annotated[
        bool, typer.Option("--model", help="Then rebuild the star schema if listens changed.")
    ] = False,
    topic: Topics = None,
    lake_option: LakeOptions = None,
    warehouse_option: WarehouseOptions = None,
) -> None:
    """Catch up: load, de-duplicate and compact every finished hour not yet done."""
    from backbeat.ui.progress import StatusLine
    from backbeat.warehouse.model import build_model
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
            built = build_model(wh) if model and report.deduplicated else None
            summary = report.as_dict() | {"model": built.rows if built else None}
            emit(summary, f"{report.loaded} hours loaded, {report.deduplicated} de-duplicated"
                 + (", star schema rebuilt" if built else "")
                 + f" in {report.seconds:.1f}s")  # fmt: skip
            if pause is None:
                return
            time.sleep(pause.total_seconds())

    guard(body)
