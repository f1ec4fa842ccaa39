"""``backbeat batch load-hour``: one event hour of a topic, from the lake into its staging
table, replacing what the table held for that hour (re-running it never duplicates).

pyiceberg's ``overwrite`` with a filter on the hour (its dynamic partition overwrite refuses
the ``hour`` transform): one snapshot that drops the hour's files and adds the new ones, so a
reader sees the hour before or after, never half. Killed before the commit, the table is as
it was (files written and not committed are orphans, removed by ``compact``).

Next: ``dedup.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyarrow import fs

from backbeat.events.schema import Topic
from backbeat.warehouse import hours
from backbeat.warehouse.catalog import Warehouse, to_table_rows
from backbeat.warehouse.jobs import Done


@dataclass(frozen=True)
class Loaded:
    topic: Topic
    hour: int
    rows: int
    files: int
    fingerprint: str

    def done(self) -> Done:
        return Done("load", self.topic.value, self.hour, self.fingerprint, self.rows)


def load_hour(
    warehouse: Warehouse, topic: Topic, hour: int, files: list[fs.FileInfo] | None = None
) -> Loaded:
    """Replace ``hour`` of the topic's staging table with the lake's rows of that hour
    (``files``: its live files, when the caller listed them already).

    Raises:
        StoreError: the lake or the catalog failed (nothing is committed then).
    """
    if files is None:
        files = warehouse.lake.live_files(topic, hour)
    events = warehouse.lake.read_hour(topic, hour, files)
    table = warehouse.staging(topic)
    rows = to_table_rows(events, topic).sort_by("ts")
    fingerprint = hours.fingerprint(files)
    summary = {"backbeat.job": "load", "backbeat.hour": hours.label(hour),
               "backbeat.lake": fingerprint}  # fmt: skip
    warehouse.commit(
        table,
        lambda: table.overwrite(
            rows,
            overwrite_filter=hours.within(hour),
            snapshot_properties=summary,
        ),
    )
    return Loaded(topic, hour, rows.num_rows, len(files), fingerprint)
