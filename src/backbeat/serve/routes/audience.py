"""Routes of who listens: active users, pages, logins, levels and genders, US states.

Next: ``params.py``, ``live.py``.
"""

from __future__ import annotations

from fastapi import APIRouter

from backbeat.serve import models
from backbeat.serve.hub import CommitHub
from backbeat.serve.routes.needs import needs
from backbeat.serve.routes.params import Limit, Window, rows, span_of
from backbeat.sinks import queries as q


def router(reader: q.Reader, hub: CommitHub) -> APIRouter:
    api = APIRouter()

    @api.get("/api/users/active", tags=["audience"], **needs(reader, q.ActiveUsers))
    def active_users(window: Window = "1h") -> models.ActiveUsers:
        """Distinct users and sessions per minute."""
        found = reader.run(q.ActiveUsers(span=span_of(window)))
        return models.ActiveUsers(
            items=[models.ActiveMinute(**r) for r in rows(found, ("window_start",))]
        )

    @api.get("/api/pages", tags=["audience"], **needs(reader, q.Pages))
    def pages(window: Window = "1h", limit: Limit = 100) -> models.Pages:
        """Page views per page."""
        found = reader.run(q.Pages(span=span_of(window), limit=limit))
        return models.Pages(items=[models.PageRow(**r) for r in rows(found)])

    @api.get("/api/auth", tags=["audience"], **needs(reader, q.AuthMinutes))
    def auth(window: Window = "1h") -> models.Auth:
        """Login attempts and successes: totals and per minute."""
        found = rows(reader.run(q.AuthMinutes(span=span_of(window))), ("window_start",))
        attempts = sum(r["attempts"] for r in found)
        successes = sum(r["successes"] for r in found)
        return models.Auth(
            attempts=attempts,
            successes=successes,
            success_rate=successes / attempts if attempts else None,
            items=[models.AuthMinute(**r) for r in found],
        )

    @api.get("/api/levels", tags=["audience"], **needs(reader, q.Levels, q.Genders, q.LevelChanges))
    def levels(window: Window = "1h") -> models.Levels:
        """Listens by subscription level and by gender; upgrades and downgrades."""
        span = span_of(window)
        return models.Levels(
            levels=[models.LevelRow(**r) for r in rows(reader.run(q.Levels(span=span)))],
            genders=[models.GenderRow(**r) for r in rows(reader.run(q.Genders(span=span)))],
            changes=[models.LevelChange(**r) for r in rows(reader.run(q.LevelChanges(span=span)))],
        )

    @api.get("/api/geo/states", tags=["audience"], **needs(reader, q.States))
    def geo_states(window: Window = "1h", limit: Limit = 60) -> models.States:
        """Listens per US state, most first."""
        found = reader.run(q.States(span=span_of(window), limit=limit))
        return models.States(items=[models.StateRow(**r) for r in rows(found)])

    return api
