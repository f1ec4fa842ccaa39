"""Routes of what is happening now: the latest events, headline figures, the live stream.

``/api/stream`` pushes one Server-Sent Event per committed batch: the new summary and the
new events matching the client's filters. Updates for one batch are computed once however
many clients wait for them (``Flights``, within ``UPDATE_CACHE_BYTES``); how many streams
may be open at once is ``../limits.py``'s ``StreamLimit``.

Next: ``params.py``, ``ops.py``, ``../hub.py`` (knowing when a batch was committed).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import pyarrow as pa
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from backbeat.errors import BackbeatError
from backbeat.serve import models
from backbeat.serve.cache import Flights
from backbeat.serve.hub import CommitHub
from backbeat.serve.limits import UPDATE_CACHE_BYTES
from backbeat.serve.routes.needs import Needs, answers, needs, require_filter
from backbeat.serve.routes.params import Keep, ms, rows
from backbeat.sinks import queries as q

log = logging.getLogger(__name__)
KEEPALIVE_S = 15.0


def _events(table: pa.Table) -> list[models.ListenEvent]:
    return [models.ListenEvent(**row) for row in rows(table, ("ts",))]


def summary_model(reader: q.Reader) -> models.Summary:
    """The headline figures, with the change against the hour before."""
    row = reader.one(q.Summary())
    as_of = row.pop("as_of")
    last, prev = row["streams_last_hour"], row["streams_prev_hour"]
    change = (last - prev) / prev if prev else None
    return models.Summary(as_of=ms(as_of), streams_change=change, **row)


def _error_event(exc: BackbeatError) -> str:
    log.warning("live update failed: %s", exc)
    return f"event: store-error\ndata: {json.dumps({'error': str(exc)})}\n\n"


def router(reader: q.Reader, hub: CommitHub) -> APIRouter:
    api = APIRouter()
    flights: Flights[bytes] = Flights(max_bytes=UPDATE_CACHE_BYTES, size=lambda _, v: len(v))

    def filtered_events(keep: q.ListenFilter) -> None:
        Needs(reader, (q.Events,))()
        require_filter(reader, q.Events, keep)

    @api.get("/api/filters", tags=["events"], **needs(reader, q.FilterValues))
    def filters() -> models.Filters:
        """The values the dashboard's select filters can take."""
        values: dict[str, list[str]] = {d: [] for d in ("genre", "platform", "country", "mood")}
        for row in rows(reader.run(q.FilterValues())):
            values.setdefault(row["dimension"], []).append(row["value"])
        return models.Filters(**values)

    @api.get("/api/events", tags=["events"], **needs(reader, q.Events))
    def events(keep: Keep, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> models.Events:
        """The latest listen events (event time, newest first) matching the filters."""
        require_filter(reader, q.Events, keep)
        return models.Events(items=_events(reader.run(q.Events(keep=keep, limit=limit))))

    @api.get("/api/summary", tags=["live"], **needs(reader, q.Summary))
    def summary() -> models.Summary:
        """Headline figures: streams this hour vs the last, active users, paid share..."""
        return summary_model(reader)

    async def cached(key: tuple[object, ...], version: int, make: Callable[[], bytes]) -> bytes:
        async def compute() -> bytes:
            return await asyncio.to_thread(make)

        return await flights.get(key, version, compute)

    async def update(version: int, keep: q.ListenFilter, since: int | None) -> str:
        summary = cached(
            ("summary",), version, lambda: summary_model(reader).model_dump_json().encode()
        )
        if since is None or not answers(reader, q.Events):
            summary_json, events_json = await summary, b"[]"
        else:
            batches = (since, version)

            def new_events() -> bytes:
                table = reader.run(q.Events(keep=keep, limit=50, batches=batches))
                return json.dumps(
                    [e.model_dump(mode="json") for e in _events(table)], separators=(",", ":")
                ).encode()

            # Two queries on two cursors at once: the update waits for the slower one only.
            summary_json, events_json = await asyncio.gather(
                summary, cached(("events", keep, batches), version, new_events)
            )
        data = b'{"batch_id":%d,"summary":%s,"events":%s}' % (version, summary_json, events_json)
        return f"event: update\ndata: {data.decode()}\n\n"

    @api.get(
        "/api/stream",
        tags=["live"],
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "Server-Sent Events: one `update` (an Update object as JSON) "
                "at connect and after every committed batch, a `store-error` ({error}) when "
                "the store cannot answer (retried at the next commit); comments keep the "
                "line alive.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        },
        **needs(reader, q.Summary, optional=(q.Events,)),
    )
    async def stream(request: Request, keep: Keep) -> StreamingResponse:
        """Live updates pushed after each committed micro-batch (filters as /api/events; a
        store without the latest events pushes none, and answers 501 to a filter)."""
        if not keep.empty:  # before the response starts: a filter it cannot apply is a 501
            await asyncio.to_thread(filtered_events, keep)

        async def updates() -> AsyncIterator[str]:
            # The response has started: a store that cannot answer is reported in the
            # stream (`event: store-error`; a plain `error` would look like a lost connection
            # to EventSource) and the same batches are tried again at the next commit.
            seen = hub.version
            try:
                yield await update(seen, keep, None)
            except BackbeatError as exc:
                yield _error_event(exc)
            while not await request.is_disconnected():
                version = await hub.wait_newer(seen, KEEPALIVE_S)
                if version == seen:
                    yield ": keep-alive\n\n"
                    continue
                try:
                    yield await update(version, keep, seen)
                except BackbeatError as exc:
                    yield _error_event(exc)
                    continue
                seen = version

        return StreamingResponse(
            updates(),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    return api
