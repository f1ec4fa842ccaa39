"""The Iceberg warehouse: which catalog, where table files go, and the tables backbeat keeps.

``--warehouse URI`` names any pyiceberg catalog by its URI: ``sqlite:///path.db`` or
``postgresql://...`` (pyiceberg's SQL catalog), ``http(s)://...`` (REST), ``thrift://...``
(Hive); ``--warehouse-option key=value`` passes further catalog properties (``type=glue``,
credentials, ``s3.*`` settings). The default is a SQL catalog on SQLite in the local data
folder (``backbeat-data/warehouse.db``) whose table files live under the lake's URL
(``<lake>/iceberg``), so ``--lake`` alone is enough; an ``s3://`` lake gives the FileIO its
endpoint and region, credentials from the standard ``AWS_*`` variables.

Tables, in namespace ``backbeat``: one staging table per topic (``listen_events``...) holding
the lake's rows with ``ts`` as a UTC timestamp, partitioned by ``hour(ts)``; ``listens``, the
de-duplicated gold table (same layout); ``jobs``, what the batch jobs did (the record
``batch run`` catches up from); and the star schema (``model.py``). A column added to the
event contract is added to the tables by name on the next load; files written before it read
as null (Iceberg's schema evolution: no rewrite).

Next: ``load.py`` (lake -> staging), ``dedup.py``, ``maintain.py``, ``jobs.py``.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa

from backbeat.errors import ConfigError, StoreError
from backbeat.events.schema import Topic, arrow_schema
from backbeat.sinks.lake.layout import Lake

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

NAMESPACE: Final = "backbeat"
GOLD: Final = "listens"
DEFAULT_FOLDER: Final = "backbeat-data"
TS: Final = pa.timestamp("us", tz="UTC")


def default_warehouse(data_folder: str | None = None) -> str:
    """The SQLite catalog in the local data folder (the store's folder when it is one)."""
    folder = data_folder if data_folder and "://" not in data_folder else DEFAULT_FOLDER
    return f"sqlite:///{Path(folder).absolute() / 'warehouse.db'}"


def table_schema(topic: Topic) -> pa.Schema:
    """A topic's warehouse columns: the event contract with ``ts`` as a UTC timestamp."""
    schema = arrow_schema(topic)
    return schema.set(schema.get_field_index("ts"), pa.field("ts", TS, nullable=False))


def to_table_rows(events: pa.Table, topic: Topic) -> pa.Table:
    """Lake rows (``ts`` in epoch ms) in the warehouse's columns."""
    ts = events.column("ts").cast(pa.int64()).cast(pa.timestamp("ms", tz="UTC")).cast(TS)
    rows = events.set_column(events.schema.get_field_index("ts"), "ts", ts)
    schema = table_schema(topic)
    return rows.select(schema.names).cast(schema)


@dataclass
class Warehouse:
    """An open catalog, the lake it loads from, and the tables of namespace ``backbeat``."""

    lake: Lake
    catalog: Catalog
    uri: str
    _tables: dict[str, Table] = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        lake: Lake,
        uri: str | None = None,
        options: Mapping[str, str] | None = None,
        data_folder: str | None = None,
    ) -> Warehouse:
        """Open (and create when new) the catalog and the namespace.

        Raises:
            ConfigError: pyiceberg is missing, or the catalog cannot be opened.
        """
        try:
            from pyiceberg.catalog import load_catalog
            from pyiceberg.exceptions import NamespaceAlreadyExistsError
        except ImportError:
            raise ConfigError(
                "the warehouse needs backbeat[iceberg] (pyiceberg): pip install 'backbeat[iceberg]'"
            ) from None
        uri = uri or default_warehouse(data_folder)
        props = _properties(lake, uri, options or {})
        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            catalog = load_catalog("backbeat", **props)
            with contextlib.suppress(NamespaceAlreadyExistsError):
                catalog.create_namespace(NAMESPACE)
        except ConfigError:
            raise
        except Exception as exc:  # pyiceberg raises many kinds for a bad catalog
            raise ConfigError(f"--warehouse {_shown(uri)}: {_one_line(exc)}") from None
        return cls(lake, catalog, uri)

    def table(self, name: str, schema: pa.Schema | None = None) -> Table:
        """Table ``name`` of the namespace; created partitioned by ``hour(ts)`` from ``schema``
        when missing, and given the columns of ``schema`` it lacks (by name, never dropping).

        Raises:
            StoreError: the catalog refused.
        """
        from pyiceberg.exceptions import NoSuchTableError

        ident = f"{NAMESPACE}.{name}"
        try:
            table = self._tables.get(name)
            if table is None:
                try:
                    table = self.catalog.load_table(ident)
                except NoSuchTableError:
                    if schema is None:
                        raise StoreError(
                            f"the warehouse has no table {ident} yet (run backbeat batch run)"
                        ) from None
                    table = self._create(ident, schema)
            if schema is not None:
                table = self._evolve(table, schema)
            self._tables[name] = table
            return table
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"the warehouse failed on {ident}: {_one_line(exc)}") from None

    def staging(self, topic: Topic) -> Table:
        return self.table(topic.value, table_schema(topic))

    def gold(self) -> Table:
        return self.table(GOLD, table_schema(Topic.LISTEN))

    def refresh(self, name: str) -> Table:
        """The table as the catalog has it now (another process may have committed)."""
        self._tables.pop(name, None)
        return self.table(name)

    def commit(self, table: Table, change: Callable[[], None]) -> None:
        """Run ``change`` (one pyiceberg commit) on ``table``; once more on a fresh copy of
        the table when another writer committed first.

        Raises:
            StoreError: the catalog or the files refused.
        """
        from pyiceberg.exceptions import CommitFailedException

        try:
            with warnings.catch_warnings():  # replacing an hour that held nothing is normal
                warnings.filterwarnings("ignore", "Delete operation did not match any records")
                try:
                    change()
                except CommitFailedException:
                    table.refresh()
                    change()
        except Exception as exc:
            raise StoreError(f"the warehouse failed on {table.name()}: {_one_line(exc)}") from None

    def close(self) -> None:
        """Release the catalog's connections (a SQL catalog's pool)."""
        closer = getattr(self.catalog, "close", None)
        if callable(closer):
            closer()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lake_path(self, uri: str) -> str | None:
        """Where a table file's URI lies on the lake's filesystem (None: not under the lake)."""
        for prefix in ("file://", "s3://", "s3a://", ""):
            if uri.startswith(prefix):
                path = uri.removeprefix(prefix)
                if path.startswith(self.lake.root + "/"):
                    return path
        return None

    def exists(self, name: str) -> bool:
        return bool(self.catalog.table_exists(f"{NAMESPACE}.{name}"))

    def _create(self, ident: str, schema: pa.Schema) -> Table:
        from pyiceberg.exceptions import TableAlreadyExistsError
        from pyiceberg.transforms import HourTransform

        try:
            with self.catalog.create_table_transaction(ident, schema=schema) as create:
                if "ts" in schema.names and pa.types.is_timestamp(schema.field("ts").type):
                    with create.update_spec() as spec:
                        spec.add_field("ts", HourTransform(), "ts_hour")
        except TableAlreadyExistsError:  # another job created it first
            pass
        return self.catalog.load_table(ident)

    def _evolve(self, table: Table, schema: pa.Schema) -> Table:
        have = set(table.schema().column_names)
        if all(name in have for name in schema.names):
            return table
        with table.update_schema() as update:
            update.union_by_name(schema)
        return table


def _properties(lake: Lake, uri: str, options: Mapping[str, str]) -> dict[str, Any]:
    props: dict[str, Any] = {"uri": uri, "warehouse": f"{_location(lake)}/iceberg"}
    if uri.startswith("postgresql://"):
        props["uri"] = "postgresql+psycopg://" + uri.removeprefix("postgresql://")
    if uri.startswith(("sqlite", "postgresql")):
        props["type"] = "sql"
    if lake.url.startswith("s3://"):
        if lake.endpoint:
            props["s3.endpoint"] = lake.endpoint
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            props["s3.region"] = region
    props.update(options)
    return props


def _location(lake: Lake) -> str:
    return f"file://{lake.root}" if lake.local else lake.url


def _shown(uri: str) -> str:
    """A catalog URI with any password replaced by ``***``."""
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        auth, host = rest.rsplit("@", 1)
        user = auth.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in auth else uri
    return uri


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
