"""Routes of recommendations: tracks for a listener, tracks that sound alike, a listener's
recent listens and the model that answers.

A recommender (``backbeat.recommend``, a reader wrapping the store's) answers
:class:`~backbeat.sinks.queries.Recommendations`, ``SimilarTracks`` and ``ModelInfo``; the
store answers ``UserListens``. A reader without them answers 501 (``needs.py``), a
recommender with no model yet 503 (``StoreNotReadyError``; ``/api/recommend/model`` says
``ready: false`` instead), a track nobody knows 404
(``NotFoundError``). Answers are never cached (:data:`FRESH`, and routes with path parameters
are not cached either, ``../cache.py``): a new model may land between two commits, and the
recommender re-fits listeners after each commit, so the batch id is not the answer's version.

Next: ``params.py``, ``needs.py``, ``../models.py``.
"""

from __future__ import annotations

from typing import Annotated, Final

import pyarrow as pa
from fastapi import APIRouter, Query

from backbeat.serve import models
from backbeat.serve.hub import CommitHub
from backbeat.serve.routes.needs import needs
from backbeat.serve.routes.params import TrackKey, UserId, rows
from backbeat.sinks import queries as q

MODEL_PATH: Final = "/api/recommend/model"
FRESH: Final = (MODEL_PATH,)
"""Paths the response cache must skip (those with path parameters it skips by itself)."""

Picks = Annotated[int, Query(ge=1, le=200, description="Tracks at most.")]
Listens = Annotated[int, Query(ge=1, le=500, description="Listens at most.")]


def _picks(table: pa.Table) -> tuple[models.ModelStamp | None, list[models.Pick]]:
    """A recommender's answer: the model on its rows (None without rows) and the tracks."""
    found = rows(table, ("trained_at",))
    if not found:
        return None, []
    first = found[0]
    stamp = models.ModelStamp(
        version=first["model_version"],
        trained_at=first["trained_at"],
        through_batch=first["through_batch"],
    )
    return stamp, [models.Pick(**row) for row in found]


def router(reader: q.Reader, hub: CommitHub) -> APIRouter:
    api = APIRouter()

    @api.get(
        "/api/users/{user_id}/recommendations",
        tags=["recommendations"],
        responses={503: {"description": "No model yet (`backbeat recommend train`)."}},
        **needs(reader, q.Recommendations),
    )
    def recommendations(user_id: UserId, limit: Picks = 10) -> models.Recommendations:
        """Tracks for one listener, best first, each with why (tracks they heard recently
        are left out); ``model``: the model that answered (null with no items)."""
        stamp, items = _picks(reader.run(q.Recommendations(user=user_id, limit=limit)))
        return models.Recommendations(user=user_id, model=stamp, items=items)

    @api.get(
        "/api/tracks/{track:path}/similar",
        tags=["recommendations"],
        responses={404: {"description": "No catalog or history knows this track."}},
        **needs(reader, q.SimilarTracks),
    )
    def similar(track: TrackKey, limit: Picks = 10) -> models.SimilarTracks:
        """Tracks that sound like ``track``, most similar first."""
        stamp, items = _picks(reader.run(q.SimilarTracks(track=track, limit=limit)))
        return models.SimilarTracks(track=track, model=stamp, items=items)

    @api.get(
        "/api/users/{user_id}/listens", tags=["recommendations"], **needs(reader, q.UserListens)
    )
    def listens(user_id: UserId, limit: Listens = 20) -> models.UserListens:
        """One listener's newest listens, newest first (what recommendations start from)."""
        found = rows(reader.run(q.UserListens(user=user_id, limit=limit)), ("ts",))
        return models.UserListens(user=user_id, items=[models.UserListen(**r) for r in found])

    @api.get(MODEL_PATH, tags=["recommendations"], **needs(reader, q.ModelInfo))
    def model() -> models.RecommenderModel:
        """The recommender's model: its version, when it was trained, the last batch it has
        seen, how many listeners and tracks it knows and has re-fitted since; ``ready``
        false before one is trained (`backbeat recommend train`), so a page can wait for it
        without asking a route that would answer 503."""
        found = rows(reader.run(q.ModelInfo()), ("trained_at",))
        if not found:
            return models.RecommenderModel(ready=False)
        return models.RecommenderModel(ready=True, **found[0])

    return api
