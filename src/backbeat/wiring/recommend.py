"""Recommendations beside a run or a server: the shelf, the recommender, its follower thread.

:func:`recommending` builds, for the store at a location, a
:class:`~backbeat.recommend.reader.RecommendingReader` over the given reader and a
:class:`~backbeat.recommend.service.Follower` that folds each commit into the served model
(and, with ``retrain_every``, trains a new one that often, the first as soon as the store holds
a batch and no model fits it, with the tracks of ``catalog``: a file, or the simulator's own). ``stream --recommend``, ``demo`` and ``serve --recommend`` hand
the reader to the API.

Next: ``backbeat.recommend.service``, ``pipeline.py`` (the run it sits beside).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from backbeat.errors import BackbeatError
from backbeat.simulate.catalog import Catalog
from backbeat.sinks.queries import Reader
from backbeat.sinks.registry import open_shelf

log = logging.getLogger(__name__)


@contextlib.contextmanager
def recommending(
    reader: Reader,
    location: str,
    *,
    retrain_every: timedelta | None = None,
    catalog: Path | Catalog | None = None,
) -> Iterator[Reader]:
    """``reader`` plus the recommender's queries, kept fresh while the block runs.

    Raises:
        MissingExtraError: ``backbeat[recommend]`` is not installed;
        ConfigError, StoreError: the store keeps no shelf, or it cannot be opened.
    """
    from backbeat.recommend.blas import require

    require()
    from backbeat.recommend.model import Params
    from backbeat.recommend.reader import RecommendingReader
    from backbeat.recommend.service import Follower, Recommender
    from backbeat.simulate.catalog_file import load_catalog

    shelf = open_shelf(location)
    try:
        recommender = Recommender(reader, shelf)
        try:  # serve the shelved model from the first request (a follower then keeps it fresh)
            recommender.refresh()
        except BackbeatError as exc:
            log.warning("recommender: %s", exc)
        retrain = None
        if retrain_every is not None:
            tracks = load_catalog(catalog) if isinstance(catalog, Path) else catalog
            retrain = (shelf, tracks, Params())
        follower = Follower(
            recommender,
            reader,
            retrain_s=None if retrain_every is None else retrain_every.total_seconds(),
            retrain=retrain,
        )
        follower.start()
        try:
            yield RecommendingReader(reader, recommender)
        finally:
            follower.stop()
    finally:
        shelf.close()
