"""Routes for operators: ``/health`` and ``/metrics`` (Prometheus text format).

Next: ``../app.py`` (which leaves ``/health`` open when a token is set).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from backbeat.serve import models
from backbeat.serve.hub import CommitHub
from backbeat.serve.routes.needs import answers, needs
from backbeat.sinks import queries as q

_COUNTERS = (
    ("events_in", "Events read from the source."),
    ("accepted", "Events accepted (valid, on time, not duplicates)."),
    ("duplicates", "Events dropped as duplicates."),
    ("late", "Events later than the allowed lateness (dead letters)."),
    ("dead", "Dead letters (malformed, out of contract or late)."),
    ("batches", "Committed micro-batches."),
)


def prometheus(totals: dict[str, Any]) -> str:
    """The store's counters as Prometheus text exposition."""
    lines: list[str] = []
    for name, help_text in _COUNTERS:
        metric = f"backbeat_{name}_total"
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
        lines.append(f"{metric} {int(totals[name])}")
    lines += [
        "# HELP backbeat_events_per_second Events committed per second over the last 10 s.",
        "# TYPE backbeat_events_per_second gauge",
        f"backbeat_events_per_second {float(totals['events_per_second'] or 0):.3f}",
        "# HELP backbeat_batch_seconds Micro-batch latency (last 100 batches).",
        "# TYPE backbeat_batch_seconds summary",
    ]
    quantiles = totals["batch_seconds"] or []
    for quantile, value in zip(("0.5", "0.9", "0.99"), quantiles, strict=False):
        lines.append(f'backbeat_batch_seconds{{quantile="{quantile}"}} {value:.6f}')
    age = totals["last_commit_age_s"]
    lines += [
        "# HELP backbeat_last_commit_age_seconds Seconds since the last commit.",
        "# TYPE backbeat_last_commit_age_seconds gauge",
        f"backbeat_last_commit_age_seconds {float(age) if age is not None else float('nan')}",
    ]
    return "\n".join(lines) + "\n"


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
        **needs(reader, q.BatchTotals),
    )
    def metrics() -> str:
        """Prometheus text format: events in, dead letters, batch latency, events/s."""
        return prometheus(reader.one(q.BatchTotals()))

    return api
