"""The REST API and the live push: FastAPI routers over a reader's named queries.

Every route asks a :class:`~backbeat.sinks.queries.Reader` a named query (never SQL, never a
table), binds every filter as a typed parameter and answers with a pydantic model, so
``/docs`` documents it. Windows (``5m``, ``1h``, ``24h``, ``all``...) end with the minute of
the store's latest event, so replayed history reads the same as a live stream. Bad parameters
get a 422 with the reason, a query the store does not answer a 501 (each route declares the
queries it needs: ``needs.py``; ``/api/capabilities`` lists the routes that answer), what a
path names that nobody knows a 404 (``NotFoundError``), a store that cannot answer a 503.
``/api/stream`` pushes one Server-Sent Event per committed batch.

Next: ``params.py`` (shared parameters), ``needs.py``, ``rankings.py``, ``audience.py``,
``live.py``, ``ops.py``, ``recommend.py``; ``../app.py`` (assembling them with auth, cache
and the dashboard).
"""

from __future__ import annotations

from fastapi import APIRouter

from backbeat.serve.hub import CommitHub
from backbeat.serve.routes import audience, live, ops, rankings, recommend
from backbeat.serve.routes.needs import capabilities_router
from backbeat.sinks.queries import Reader


def build_router(reader: Reader, hub: CommitHub) -> APIRouter:
    """The ``/api`` routes, ``/health`` and ``/metrics`` over ``reader``, and
    ``/api/capabilities`` saying which of them answer."""
    router = APIRouter()
    parts = [part.router(reader, hub) for part in (rankings, audience, live, ops, recommend)]
    for part in parts:
        router.include_router(part)
    router.include_router(capabilities_router(reader, [r for p in parts for r in p.routes]))
    return router
