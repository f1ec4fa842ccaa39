"""The SQL stores' reader: every named query of ``backbeat.sinks.queries``, answered by its
handler in ``answers.py`` on a backend's :class:`Connections`.

Next: ``answers.py`` (the SQL), ``../duckdb/connections.py`` and ``../postgres/reader.py``
(where the queries run), ``../queries.py`` (the contract).
"""

from __future__ import annotations

import pyarrow as pa

from backbeat.sinks import queries as q
from backbeat.sinks.sql.answers import HANDLERS
from backbeat.sinks.sql.connections import Connections


class SqlReader(q.Reader):
    """Answers every named query from a SQL store."""

    def __init__(self, connections: Connections) -> None:
        self._db = connections

    def answers(self) -> frozenset[str]:
        return frozenset(q.name_of(kind) for kind in HANDLERS)

    def run(self, query: q.Query) -> pa.Table:
        handler = HANDLERS.get(type(query))
        if handler is None:
            raise self.refuse(query)
        return handler(self._db, query)

    def wait_for_commit(self, after: int, timeout_s: float) -> int | None:
        return self._db.wait_for_commit(after, timeout_s)

    def close(self) -> None:
        close = getattr(self._db, "close", None)
        if close is not None:
            close()
