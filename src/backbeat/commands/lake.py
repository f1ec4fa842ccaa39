"""``backbeat batch compact-lake``: merge the lake's small files, one per topic and hour, and
remove what interrupted runs left (idempotent; safe next to a running ``stream --lake``).

Next: ``backbeat.sinks.lake.compact`` (what it does and why it is safe).
"""

from __future__ import annotations

from typing import Annotated

import typer

from backbeat.commands.batch import Topics, topics_of
from backbeat.commands.common import OPTS, console, duration, emit, guard
from backbeat.commands.warehouse import LakeOptions, key_values
from backbeat.errors import ConfigError


def compact_lake(
    lake: Annotated[str, typer.Option("--lake", help="The lake: a folder or s3://bucket/prefix.")],
    lake_option: LakeOptions = None,
    topics: Topics = None,
    year: Annotated[int | None, typer.Option(help="Only one hour: its year (UTC).")] = None,
    month: Annotated[int | None, typer.Option(help="... its month.")] = None,
    day: Annotated[int | None, typer.Option(help="... its day.")] = None,
    hour: Annotated[int | None, typer.Option(help="... its hour.")] = None,
    orphan_age: Annotated[
        str,
        typer.Option(help="Remove staged and half-merged files older than this (10m, 1h...)."),
    ] = "1h",
) -> None:
    """Merge each hour's lake files of a topic into one; remove orphans of crashed runs."""
    from backbeat.sinks.lake.compact import compact_lake as compact
    from backbeat.sinks.lake.layout import Lake
    from backbeat.ui.progress import StatusLine

    def body() -> None:
        age = duration(orphan_age, "--orphan-age")
        chosen = topics_of(topics)
        picked = one_hour(year, month, day, hour)
        opened = Lake.open(lake, key_values(lake_option, "--lake-option"))
        status = StatusLine(console, enabled=not OPTS.json, description="compacting")
        with status:
            status.advance(0, "listing the lake")
            report = compact(
                opened,
                chosen,
                picked,
                age,
                lambda done, total, what: status.advance(done, f"{done}/{total} {what}"),
            )
        emit(
            {"lake": opened.url, **vars(report)},
            f"{report.hours:,} hours merged: {report.files_before:,} files "
            f"({report.bytes_before:,} bytes) -> {report.files_after:,} "
            f"({report.bytes_after:,} bytes); {report.orphans:,} orphans removed",
        )

    guard(body)


def one_hour(year: int | None, month: int | None, day: int | None, hour: int | None) -> int | None:
    """The hour (epoch ms // ``HOUR_MS``) that ``--year --month --day --hour`` name (None:
    none given).

    Raises:
        ConfigError: some but not all given, or not a time.
    """
    given = (year, month, day, hour)
    if all(v is None for v in given):
        return None
    from backbeat.sinks.lake.layout import hour_of

    if year is None or month is None or day is None or hour is None:
        raise ConfigError("to pick one hour, give all of --year, --month, --day and --hour")
    return hour_of(year, month, day, hour)
