"""Routes for operators: ``/health`` and ``/metrics`` (Prometheus text format).

Next: ``../metrics.py`` (what ``/metrics`` holds), ``../app.py`` (which leaves ``/health``
open when a token is set).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from backbeat.serve import models
from backbeat.serve.hub import CommitHub
from backbeat.serve.metrics import ServeMetrics
from backbeat.serve.routes.needs import answers
from backbeat.sinks import queries as q


def router(reader: q.Reader, hub: CommitHub) -> APIRouter:
    api = APIRouter()

    @api.get(
        "/health",
        tags=["ops"],
        responses={503: {"model": models.ErrorBody}},
        openapi_extra={"x-queries": {"needs": [], "optional": [q.name_of(q.BatchTotals)]}},
    )
    def health() -> models.Health:
        """Is the store reachable, and how old is its last commit (seconds; null when the
        store does not keep its commits' counters)?"""
        if not answers(reader, q.BatchTotals):  # reachable: it said what it answers
            return models.Health(status="ok", batch_id=None, last_commit_age_s=None)
        totals = reader.one(q.BatchTotals())
        return models.Health(
            status="ok",
            batch_id=int(totals["batch_id"]),
            last_commit_age_s=totals["last_commit_age_s"],
        )

    @api.get(
        "/metrics",
        tags=["ops"],
        response_class=PlainTextResponse,
        openapi_extra={"x-queries": {"needs": [], "optional": [q.name_of(q.BatchTotals)]}},
    )
    def metrics(request: Request) -> Response:
        """Prometheus text format: this server's requests by route and their latency, and
        the store's counters (``backbeat_store_*``: events in, dead letters, batches...)."""
        served: ServeMetrics = request.app.state.metrics
        return Response(generate_latest(served.registry), media_type=CONTENT_TYPE_LATEST)

    return api
