"""What each route asks of the reader, checked before it asks: 501 for what the store lacks.

A route declares the named queries it needs with :func:`needs` (a FastAPI dependency, also
written into the route's OpenAPI operation as ``x-queries``). When the reader does not answer
one of them, the route answers 501 naming them, before it runs any query (a route asking
several never half-runs); the queries it can do without (``optional``) are left out of its
answer instead. A listen filter needs raw listens: :func:`require_filter` refuses one the
reader cannot apply (``Reader.filters``) rather than let it answer unfiltered figures.
``/api/capabilities`` lists what the store answers and which routes answer with it, so the
dashboard hides the rest.

Next: ``__init__.py`` (where the capabilities route is built), ``backbeat.sinks.queries``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.routing import APIRoute

from backbeat.errors import UnsupportedQueryError
from backbeat.serve import models
from backbeat.sinks import queries as q


def _names(kinds: Iterable[type[q.Query]]) -> tuple[str, ...]:
    return tuple(q.name_of(kind) for kind in kinds)


class Needs:
    """A route's dependency: 501 unless the reader answers every ``required`` query."""

    def __init__(
        self,
        reader: q.Reader,
        required: tuple[type[q.Query], ...],
        optional: tuple[type[q.Query], ...] = (),
    ) -> None:
        self.reader = reader
        self.required = _names(required)
        self.optional = _names(optional)

    def missing(self, answered: frozenset[str]) -> list[str]:
        """The required queries not in ``answered``."""
        return [name for name in self.required if name not in answered]

    def __call__(self) -> None:
        answered = self.reader.answers()
        if missing := self.missing(answered):
            raise UnsupportedQueryError(
                f"this store does not answer {', '.join(map(repr, missing))} "
                f"(it answers: {', '.join(sorted(answered)) or 'nothing'})"
            )


def needs(
    reader: q.Reader, *required: type[q.Query], optional: tuple[type[q.Query], ...] = ()
) -> dict[str, Any]:
    """The route arguments (``@api.get(path, **needs(reader, q.Pages))``) of a route that
    answers 501 unless ``reader`` answers every ``required`` query."""
    need = Needs(reader, required, optional)
    doc = {"needs": list(need.required), "optional": list(need.optional)}
    return {"dependencies": [Depends(need)], "openapi_extra": {"x-queries": doc}}


def answers(reader: q.Reader, kind: type[q.Query]) -> bool:
    """Does ``reader`` answer ``kind`` (for a route's optional queries)?"""
    return q.name_of(kind) in reader.answers()


def require_filter(reader: q.Reader, kind: type[q.Query], keep: q.ListenFilter) -> None:
    """Raise UnsupportedQueryError (501) when ``keep`` filters and ``reader`` cannot apply
    it to ``kind`` (its store keeps no raw listens)."""
    if keep.empty or q.name_of(kind) in reader.filters():
        return
    used = ", ".join(f for f in keep.__struct_fields__ if getattr(keep, f) is not None)
    raise UnsupportedQueryError(
        f"this store does not answer {q.name_of(kind)!r} with listen filters ({used}): "
        "it keeps no raw listens; ask without them"
    )


def _needs_of(route: APIRoute) -> list[Needs]:
    return [d.dependency for d in route.dependencies if isinstance(d.dependency, Needs)]


def capabilities_router(reader: q.Reader, routes: Iterable[object]) -> APIRouter:
    """``/api/capabilities`` over the API routes in ``routes`` (and itself)."""
    api = APIRouter()
    table = [(r.path_format, _needs_of(r)) for r in routes if isinstance(r, APIRoute)]

    @api.get(
        "/api/capabilities",
        tags=["ops"],
        openapi_extra={"x-queries": {"needs": [], "optional": []}},
    )
    def capabilities() -> models.Capabilities:
        """What this store answers: its named queries, those it also answers with listen
        filters, and the routes that answer (the others answer 501)."""
        answered = reader.answers()
        paths = [path for path, need in table if not any(n.missing(answered) for n in need)]
        return models.Capabilities(
            queries=sorted(answered),
            filtered=sorted(reader.filters() & answered),
            routes=sorted({*paths, "/api/capabilities"}),
        )

    return api
