"""A store's reader that also answers the recommender's named queries.

:class:`RecommendingReader` wraps the reader of the store the recommender learns from: the
queries of :data:`~backbeat.sinks.queries.RECOMMENDER` (``recommendations``,
``similar-tracks``, ``model-info``) go to the :class:`~backbeat.recommend.service.Recommender`,
every other query to the store. The API, the dashboard and the engine's read socket take it
like any reader, so the web process of ``demo`` asks the engine's process for recommendations
the same way it asks for top songs.

Next: ``service.py``; ``backbeat.wiring.recommend`` (who builds it).
"""

from __future__ import annotations

import pyarrow as pa

from backbeat.recommend.service import Recommender
from backbeat.sinks import queries as q


class RecommendingReader(q.Reader):
    """``inner``'s answers plus the recommender's (see the module docstring)."""

    def __init__(self, inner: q.Reader, recommender: Recommender) -> None:
        self._inner = inner
        self._recommender = recommender

    def answers(self) -> frozenset[str]:
        return self._inner.answers() | q.RECOMMENDER

    def filters(self) -> frozenset[str]:
        return self._inner.filters()

    def run(self, query: q.Query) -> pa.Table:
        if isinstance(query, q.Recommendations):
            return self._recommender.recommendations(query.user, query.limit)
        if isinstance(query, q.SimilarTracks):
            return self._recommender.similar(query.track, query.limit)
        if isinstance(query, q.ModelInfo):
            return self._recommender.info()
        return self._inner.run(query)

    def wait_for_commit(self, after: int, timeout_s: float) -> int | None:
        return self._inner.wait_for_commit(after, timeout_s)

    def close(self) -> None:
        self._inner.close()
