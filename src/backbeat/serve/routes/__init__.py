"""The REST API and the live push: FastAPI routers over a reader's named queries.

Every route asks a :class:`~backbeat.sinks.queries.Reader` a named query (never SQL, never a
table), binds every filter as a typed parameter and answers with a pydantic model, so
``/docs`` documents it. Windows (``5m``, ``1h``, ``24h``, ``all``...) end with the minute of
the store's latest event, so replayed history reads the same as a live stream. Bad parameters
get a 422 with the reason, a query the store does not answer a 501, a store that cannot
answer a 503. ``/api/stream`` pushes one Server-Sent Event per committed batch.

Next: ``params.py`` (shared parameters), ``rankings.py``, ``audience.py``, ``live.py``,
``ops.py``; ``../app.py`` (assembling them with auth, cache and the dashboard).
"""

from __future__ import annotations

from fastapi import APIRouter

from backbeat.serve.hub import CommitHub
from backbeat.serve.routes import audience, live, ops, rankings
from backbeat.sinks.queries import Reader


def build_router(reader: Reader, hub: CommitHub) -> APIRouter:
    """The ``/api`` routes, ``/health`` and ``/metrics`` over ``reader``."""
    router = APIRouter()
    for part in (rankings, audience, live, ops):
        router.include_router(part.router(reader, hub))
    return router
