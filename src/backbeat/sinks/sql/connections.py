"""Where a SQL store's queries run: the protocol each backend's connections implement.

Next: ``reader.py`` (the reader over them), ``../duckdb/connections.py``,
``../postgres/reader.py``.
"""

from __future__ import annotations

from typing import Protocol

import pyarrow as pa

from backbeat.sinks.sql.dialect import Dialect

Params = tuple[object, ...]


class Connections(Protocol):
    """Where a reader's queries run, and the SQL dialect they are written in."""

    @property
    def dialect(self) -> Dialect:
        """How this engine spells what differs (``dialect.py``)."""
        ...  # pragma: no cover

    def sql(self, query: str, params: Params = ()) -> pa.Table:
        """Run a read query (placeholders written ``?``); StoreError when the store cannot
        answer."""
        ...  # pragma: no cover

    def wait_for_commit(self, after: int, timeout_s: float) -> int | None:
        """The newest batch id announced after ``after`` within ``timeout_s``; None when the
        store announces nothing (see ``Reader.wait_for_commit``)."""
        ...  # pragma: no cover
