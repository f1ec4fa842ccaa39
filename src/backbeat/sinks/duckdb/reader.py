"""The embedded store's reader: every named query of ``backbeat.sinks.queries``, answered by
its handler in ``answers.py`` on connections from ``connections.py``.

Next: ``answers.py`` (the SQL), ``store.py`` (the writer), ``../queries.py`` (the contract).
"""

from __future__ import annotations

import pyarrow as pa

from backbeat.sinks import queries as q
from backbeat.sinks.duckdb.answers import HANDLERS
from backbeat.sinks.duckdb.connections import Connections


class DuckDBReader(q.Reader):
    """Answers every named query from a DuckDB store."""

    def __init__(self, connections: Connections) -> None:
        self._db = connections

    def answers(self) -> frozenset[str]:
        return frozenset(q.name_of(kind) for kind in HANDLERS)

    def run(self, query: q.Query) -> pa.Table:
        handler = HANDLERS.get(type(query))
        if handler is None:
            raise self.refuse(query)
        return handler(self._db, query)
