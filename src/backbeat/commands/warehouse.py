"""``backbeat batch model`` (the star schema), and the options every warehouse command takes:
``--lake URL``, ``--lake-option KEY=VALUE``, ``--warehouse URI``, ``--warehouse-option
KEY=VALUE`` (:func:`open_warehouse`).

Next: ``backbeat.warehouse.model``, ``backbeat.warehouse.catalog`` (what ``--warehouse`` takes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from backbeat.commands.common import OPTS, console, emit, guard, settings
from backbeat.errors import ConfigError

if TYPE_CHECKING:
    from backbeat.warehouse.catalog import Warehouse

LakeOption = Annotated[
    str | None,
    typer.Option("--lake", help="The lake: a folder or s3://bucket/prefix URL."),
]
LakeOptions = Annotated[
    list[str] | None,
    typer.Option("--lake-option", help="A lake option KEY=VALUE: endpoint, region (repeatable)."),
]
WarehouseOption = Annotated[
    str | None,
    typer.Option(
        "--warehouse",
        help="The Iceberg catalog's URI: sqlite:///file.db, postgresql://..., http(s)://... "
        "(REST), thrift://... (default: SQLite in the data folder, tables under <lake>/iceberg).",
    ),
]
WarehouseOptions = Annotated[
    list[str] | None,
    typer.Option(
        "--warehouse-option",
        help="A catalog property KEY=VALUE (type=glue, s3.endpoint=..., repeatable).",
    ),
]


def key_values(values: list[str] | None, flag: str) -> dict[str, str]:
    """``KEY=VALUE`` flags as a mapping (a later key wins).

    Raises:
        ConfigError: a value without ``=`` or with an empty key.
    """
    from backbeat.wiring.pipeline import key_value

    return dict(key_value(value, flag) for value in values or [])


def open_warehouse(
    lake: str | None,
    lake_option: list[str] | None,
    warehouse: str | None,
    warehouse_option: list[str] | None,
) -> Warehouse:
    """The warehouse the options name (catalog created when new).

    Raises:
        ConfigError: no ``--lake``, a bad option, or a catalog that cannot be opened.
    """
    from backbeat.sinks.lake.layout import Lake
    from backbeat.warehouse.catalog import Warehouse

    if not lake:
        raise ConfigError("give --lake FOLDER|s3://bucket/prefix (where the warehouse's files go)")
    opened = Lake.open(lake, key_values(lake_option, "--lake-option"))
    options = key_values(warehouse_option, "--warehouse-option")
    return Warehouse.open(opened, warehouse, options, data_folder=settings().store)


def model(
    lake: LakeOption = None,
    lake_option: LakeOptions = None,
    warehouse: WarehouseOption = None,
    warehouse_option: WarehouseOptions = None,
) -> None:
    """Rebuild the star schema (dims, fact_streams, wide_stream) from staging and gold."""
    from backbeat.ui.progress import StatusLine
    from backbeat.warehouse.model import TABLES, build_model

    def body() -> None:
        opened = open_warehouse(lake, lake_option, warehouse, warehouse_option)
        status = StatusLine(console, enabled=not OPTS.json, total=len(TABLES), description="model")
        done: list[str] = []

        def progress(name: str, rows: int) -> None:
            done.append(name)
            status.advance(len(done), f"{name}: {rows:,} rows")

        with status:
            status.advance(0, "reading the staging and gold tables")
            report = build_model(opened, progress)
        emit(
            {"tables": report.rows, "seconds": round(report.seconds, 3)},
            [f"built the star schema in {report.seconds:.1f} s"]
            + [f"  backbeat.{name}: {rows:,} rows" for name, rows in report.rows.items()],
        )

    guard(body)
