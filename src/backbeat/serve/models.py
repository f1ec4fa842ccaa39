"""The API's response bodies: pydantic models, so the OpenAPI schema documents every field.

Next: ``routes/`` (the routes returning them).
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: what was wrong, and the status code."""

    error: str
    status: int


class Song(BaseModel):
    artist: str
    song: str
    track_id: str
    plays: int


class Artist(BaseModel):
    artist: str
    plays: int


class TopSongs(BaseModel):
    window: str
    items: list[Song]


class TopArtists(BaseModel):
    window: str
    items: list[Artist]


class Skipped(BaseModel):
    """A song (``track_id``, ``song`` set) or an artist people skip; shares are over the
    listens that say, rounded to 4 places."""

    artist: str
    song: str | None = None
    track_id: str | None = None
    listens: int
    skips: int
    skip_rate: float = Field(description="Skipped listens / listens that say whether skipped.")
    completion_rate: float | None
    avg_listened: float | None = Field(description="Mean share of the song played, 0..1.")


class TopSkipped(BaseModel):
    window: str
    by: str
    min_plays: int
    items: list[Skipped]


class GenreMinute(BaseModel):
    window_start: datetime
    genre: str
    plays: int


class GenreWindows(BaseModel):
    items: list[GenreMinute]
    open_from: datetime | None = Field(
        None,
        description="The first minute still filling (the minute of the latest listen of the "
        "listen partition furthest behind): the minutes before it are complete.",
    )


class EngagementRow(BaseModel):
    value: str
    listens: int
    completion_rate: float | None
    skip_rate: float | None
    avg_listened: float | None
    avg_rating: float | None


class Engagement(BaseModel):
    by: str
    items: list[EngagementRow]


class ActiveMinute(BaseModel):
    window_start: datetime
    users: int
    sessions: int


class ActiveUsers(BaseModel):
    items: list[ActiveMinute]


class PageRow(BaseModel):
    page: str
    views: int


class Pages(BaseModel):
    items: list[PageRow]


class AuthMinute(BaseModel):
    window_start: datetime
    attempts: int
    successes: int


class Auth(BaseModel):
    attempts: int
    successes: int
    success_rate: float | None
    items: list[AuthMinute]


class LevelRow(BaseModel):
    level: str
    listens: int


class GenderRow(BaseModel):
    gender: str
    listens: int


class LevelChange(BaseModel):
    prev_level: str
    new_level: str
    changes: int


class Levels(BaseModel):
    levels: list[LevelRow]
    genders: list[GenderRow]
    changes: list[LevelChange]


class StateRow(BaseModel):
    state: str
    listens: int


class States(BaseModel):
    items: list[StateRow]


class HourRow(BaseModel):
    hour: int = Field(ge=0, le=23)
    today: int
    yesterday: int


class Hourly(BaseModel):
    today: date | None
    items: list[HourRow]


class Filters(BaseModel):
    genre: list[str]
    platform: list[str]
    country: list[str]
    mood: list[str]


class ListenEvent(BaseModel):
    """One listen; what the event did not say (a replayed history, eventsim's own records)
    is null."""

    ts: datetime
    user_id: int | None
    level: str | None
    gender: str | None
    state: str | None
    artist: str
    song: str
    genre: str | None
    platform: str | None
    country: str | None
    mood: str | None
    listen_pct: float | None
    skipped: bool | None
    rating: float | None


class Events(BaseModel):
    items: list[ListenEvent]


class Summary(BaseModel):
    as_of: datetime | None = Field(description="Event time of the latest committed event.")
    batch_id: int
    streams_last_hour: int
    streams_prev_hour: int
    streams_change: float | None = Field(description="(last - previous) / previous hour.")
    active_users: int = Field(description="Distinct users in the last 5 minutes.")
    paid_share: float | None
    skip_rate: float | None
    events_per_second: float = Field(description="Events committed per second, last 10 s.")
    events_total: int
    dead_letters: int


class Update(BaseModel):
    """One Server-Sent Event of ``/api/stream``: sent after each committed micro-batch."""

    batch_id: int
    summary: Summary
    events: list[ListenEvent]


class Health(BaseModel):
    status: str
    batch_id: int | None = Field(description="The last committed batch (null: not known).")
    last_commit_age_s: float | None


class Capabilities(BaseModel):
    """What the store behind the API answers (``/api/capabilities``)."""

    queries: list[str] = Field(description="The named queries the store answers.")
    filtered: list[str] = Field(
        description="Those it also answers with listen filters (artist, genre...): they need "
        "raw listens. Routes asked with a filter for another answer 501."
    )
    routes: list[str] = Field(
        description="The paths of the routes that answer; the other routes answer 501."
    )


class ModelStamp(BaseModel):
    """The recommender's model that answered."""

    version: int
    trained_at: datetime
    through_batch: int = Field(description="The last batch whose listens the model has seen.")


class Pick(BaseModel):
    """One recommended (or similar) track, best first."""

    rank: int
    track: str = Field(description="The track's key: its catalog id, or artist and song.")
    track_id: str | None
    artist: str
    song: str
    genre: str | None
    score: float
    reason: str = Field(
        description="Why: similar listeners, similar sound, popular in your genres, popular."
    )


class Recommendations(BaseModel):
    user: int
    model: ModelStamp | None = Field(description="Null when there is nothing to recommend.")
    items: list[Pick]


class SimilarTracks(BaseModel):
    track: str
    model: ModelStamp | None = Field(description="Null when no track sounds like it.")
    items: list[Pick]


class UserListen(BaseModel):
    """One listen of one listener; what the event did not say is null."""

    ts: datetime
    track: str
    track_id: str | None
    artist: str
    song: str
    genre: str | None
    listen_pct: float | None
    completed: bool | None
    skipped: bool | None


class UserListens(BaseModel):
    user: int
    items: list[UserListen]


class RecommenderModel(BaseModel):
    """The recommender's current model (``/api/recommend/model``); ``ready`` false, and the
    rest null, before one is trained."""

    ready: bool
    model_version: int | None = None
    trained_at: datetime | None = None
    through_batch: int | None = Field(
        default=None, description="The last batch whose listens it has seen."
    )
    users: int | None = None
    tracks: int | None = None
    updates: int | None = Field(
        default=None, description="Listeners re-fitted since the model was loaded."
    )
