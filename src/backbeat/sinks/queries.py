"""The reader contract: named queries with typed parameters, answered by every store.

What the API, the dashboard, the terminal view and ``backbeat query`` show is asked for as a
:class:`Query`: a small frozen struct naming one question (top songs, genre windows, the
latest events...) and its parameters, never SQL. A :class:`Reader` answers the queries its
backend can (:meth:`Reader.answers`) with an Arrow table; each backend writes its own dialect
behind it (``duckdb/reader.py``), and no table name leaves the backend. Queries are msgspec
structs, so the same value travels between processes as JSON and is validated on arrival
(types, ranges, the query's name): the web process can ask the engine's process nothing else.

Time ranges are on window starts (epoch ms): absolute ``[start, end)``, or the ``last`` N ms
ending with the minute of the store's latest event, so replayed history reads like a live
stream.

Not every store keeps everything: one of aggregates only answers the ranked queries but
keeps no raw listens, so it cannot apply a :class:`ListenFilter`. :meth:`Reader.answers`
names the queries a reader answers, :meth:`Reader.filters` those of them it also answers with
a non-empty ``keep``; the API answers 501 for the rest and the dashboard hides them.

Next: ``duckdb/reader.py`` (the embedded store's answers), ``backbeat.serve.routes`` (the
callers).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Annotated, Any, Final

import msgspec
import pyarrow as pa

from backbeat.analytics.metrics import BY_NAME, ENGAGEMENT_DIMENSIONS
from backbeat.errors import UnsupportedQueryError

Millis = Annotated[int, msgspec.Meta(ge=-(2**62), le=2**62)]
Rows = Annotated[int, msgspec.Meta(ge=1, le=100_000)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
BatchId = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
LIMIT_MAX: Final = 100_000
RAW_SHOWN: Final = 4096
"""``DeadLetters`` answers at most this many bytes of each record (a record may be megabytes)."""


class TimeRange(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """An event-time range on window starts (epoch ms); None = unbounded.

    ``last``: only the last ``last`` ms of windows, up to and including the minute of the
    store's latest event (``last=3_600_000``: the latest minute and the 59 before it).
    """

    start: Millis | None = None
    end: Millis | None = None
    last: Annotated[int, msgspec.Meta(ge=60_000, le=2**40)] | None = None


EVERYTHING: Final = TimeRange()


class ListenFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Which listen events to keep; None = any. ``artist`` is a case-insensitive substring."""

    artist: Text | None = None
    genre: Text | None = None
    platform: Text | None = None
    country: Text | None = None
    mood: Text | None = None
    level: Text | None = None
    min_rating: Annotated[float, msgspec.Meta(ge=0, le=5)] | None = None
    skipped: bool | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__struct_fields__)


ANY: Final = ListenFilter()


class Query(
    msgspec.Struct,
    frozen=True,
    tag=True,
    tag_field="query",
    forbid_unknown_fields=True,
    omit_defaults=True,
):
    """A named question for a reader (the struct's tag is its name on the wire)."""


class TopSongs(Query, tag="top-songs", frozen=True):
    """Plays per song, most first (``keep``: only listens passing the filter)."""

    span: TimeRange = EVERYTHING
    limit: Rows = 10
    keep: ListenFilter = ANY


class TopArtists(Query, tag="top-artists", frozen=True):
    """Plays per artist, most first (``keep``: only listens passing the filter)."""

    span: TimeRange = EVERYTHING
    limit: Rows = 10
    keep: ListenFilter = ANY


SKIPPED_BY: Final = ("song", "artist")


class TopSkipped(Query, tag="top-skipped", frozen=True):
    """The songs (``by="song"``: ``track_id``, ``artist``, ``song``) or artists people skip
    most: ``listens``, ``skips``, ``skip_rate``, ``completion_rate`` and ``avg_listened``
    (shares of the listens that say), highest skip rate first, then most listens, then the
    labels. Only items with at least ``min_plays`` listens, some of which say whether they
    were skipped (one skip of a rare song tops nothing); ``keep``: only listens passing the
    filter."""

    span: TimeRange = EVERYTHING
    limit: Rows = 10
    min_plays: Annotated[int, msgspec.Meta(ge=1, le=10**9)] = 20
    by: str = "song"
    keep: ListenFilter = ANY

    def __post_init__(self) -> None:
        if self.by not in SKIPPED_BY:
            raise ValueError(f"by {self.by!r}: choose one of {', '.join(SKIPPED_BY)}")


class GenreWindows(Query, tag="genre-windows", frozen=True):
    """Plays per genre per minute, and (column ``open_from``, the same on every row) the first
    minute still filling: the minute of the latest listen of the listen partition furthest
    behind. Minutes before it are complete."""

    span: TimeRange = EVERYTHING
    limit: Rows = 10_000


class Engagement(Query, tag="engagement", frozen=True):
    """Listens, completion and skip rate, mean share listened and mean rating per value of
    one dimension (genre, platform, country or mood)."""

    span: TimeRange = EVERYTHING
    by: str = "genre"
    limit: Rows = 100

    def __post_init__(self) -> None:
        if self.by not in ENGAGEMENT_DIMENSIONS:
            raise ValueError(f"by {self.by!r}: choose one of {', '.join(ENGAGEMENT_DIMENSIONS)}")


class ActiveUsers(Query, tag="active-users", frozen=True):
    """Distinct users and sessions per minute."""

    span: TimeRange = EVERYTHING
    limit: Rows = 10_000


class Pages(Query, tag="pages", frozen=True):
    """Page views per page, most first."""

    span: TimeRange = EVERYTHING
    limit: Rows = 100


class States(Query, tag="states", frozen=True):
    """Listens per US state of the listener, most first."""

    span: TimeRange = EVERYTHING
    limit: Rows = 100


class Levels(Query, tag="levels", frozen=True):
    """Listens per subscription level (free / paid)."""

    span: TimeRange = EVERYTHING


class LevelChanges(Query, tag="level-changes", frozen=True):
    """Upgrades and downgrades: changes per (previous level, new level)."""

    span: TimeRange = EVERYTHING


class Genders(Query, tag="genders", frozen=True):
    """Listens per listener gender (guests have none)."""

    span: TimeRange = EVERYTHING


class AuthMinutes(Query, tag="auth-minutes", frozen=True):
    """Login attempts and successes per minute (epoch ms windows)."""

    span: TimeRange = EVERYTHING
    limit: Rows = 10_000


class HourlyPlays(Query, tag="hourly-plays", frozen=True):
    """Plays per event-time hour of the latest event's UTC day (``day`` 0) and the day
    before (``day`` 1): rows ``(day, hour, plays)``."""


class LatestTime(Query, tag="latest-time", frozen=True):
    """One row ``t``: the event time (epoch ms) of the store's latest event, or null."""


class Summary(Query, tag="summary", frozen=True):
    """The dashboard's headline figures in one row: streams in the last hour and the hour
    before (event time), distinct users in the last 5 minutes, paid share and skip rate in
    the last hour, events/s committed over the last 10 s of wall-clock time, totals."""


class BatchTotals(Query, tag="batch-totals", frozen=True):
    """One row of counters over every committed batch, the latest batch id, the age of the
    last commit and the last 100 batches' latency quantiles."""


class LatestBatch(Query, tag="latest-batch", frozen=True):
    """One row ``b``: the id of the last committed batch (0: none)."""


class ListeningTime(Query, tag="listening-time", frozen=True):
    """Plays and minutes listened per day (UTC, of when playback started) and artist, most
    listened first: rows ``(day, artist, plays, minutes)``."""

    span: TimeRange = EVERYTHING
    limit: Rows = 10_000


class Events(Query, tag="events", frozen=True):
    """The newest listen events (event time, newest first) passing ``keep``; with
    ``batches = (after, upto)`` only those committed by batches ``after < id <= upto``."""

    keep: ListenFilter = ANY
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 50
    batches: tuple[BatchId, BatchId] | None = None


class FilterValues(Query, tag="filter-values", frozen=True):
    """Rows ``(dimension, value)``: the values the select filters can take, as seen."""


class DeadLetters(Query, tag="dead-letters", frozen=True):
    """The latest dead letters, newest first: where each came from, the reason, and the raw
    record as it arrived (``raw``: its first ``RAW_SHOWN`` bytes, unchanged; ``raw_bytes``:
    its size)."""

    limit: Rows = 100


class DeadLetterCounts(Query, tag="dead-letter-counts", frozen=True):
    """Dead letters per topic and reason (the reason up to its first colon), most first."""


class DeadLetterRecords(Query, tag="dead-letter-records", frozen=True):
    """Whole dead letters (topic, partition, offset, reason, raw bytes) committed by batches
    ``after < id <= upto``, in commit order: for sinks that re-send them."""

    after: BatchId
    upto: BatchId


class MetricRows(Query, tag="metric-rows", frozen=True):
    """The merged rows of one metric in ``span``, sorted by its keys (exports such as the
    CSV sink, differential tests)."""

    name: str
    span: TimeRange = EVERYTHING

    def __post_init__(self) -> None:
        if self.name not in BY_NAME:
            raise ValueError(f"no metric {self.name!r}; known: {', '.join(BY_NAME)}")


LISTEN_WEIGHT: Final = (
    "CASE WHEN skipped AND coalesce(listen_pct, 0) < 0.3 THEN -1.0 "
    "ELSE coalesce(listen_pct, CASE WHEN completed THEN 1.0 ELSE 0.5 END) "
    "+ CASE WHEN completed THEN 0.5 ELSE 0.0 END END"
)
"""What one listen says about liking its track, as SQL over the ``listens`` columns: the share
listened (1 when it only says it completed, 0.5 when it says nothing), half a point more for
a completed play, and -1 for a quick skip (skipped before 30 %)."""

UserId = Annotated[int, msgspec.Meta(ge=-(2**62), le=2**62)]


class Interactions(Query, tag="interactions", frozen=True):
    """What each listener's listens say about each track, for recommendations: one row per
    (``user_id``, ``track``) with ``plays``, ``weight`` (the sum of :data:`LISTEN_WEIGHT`),
    ``first_ts`` and ``last_ts`` (epoch ms of the first and last listen), and the track's
    ``track_id``, ``artist``, ``song``, ``genre`` and the listener's ``country`` (the latest
    listen's values). ``track`` is the Spotify/catalog ``track_id`` when the listen has one,
    else ``lower(artist) || char(31) || lower(song)``.

    Rows add up: the rows of two disjoint spans or batch ranges summed per key (``plays``,
    ``weight``; min/max of the times) are the rows of both. ``span`` is on listen times (not
    window starts: ``[start, end)`` in epoch ms; ``last`` is not allowed); ``batches =
    (after, upto)``: only listens committed by batches ``after < id <= upto``; ``users``:
    only these listeners. Sorted by ``user_id, track``."""

    span: TimeRange = EVERYTHING
    batches: tuple[BatchId, BatchId] | None = None
    users: Annotated[tuple[UserId, ...], msgspec.Meta(max_length=10_000)] | None = None

    def __post_init__(self) -> None:
        if self.span.last is not None:
            raise ValueError("interactions: give span start/end, not last")


class UserListens(Query, tag="user-listens", frozen=True):
    """One listener's newest listens, newest first: ``ts``, ``track`` (as in
    :class:`Interactions`), ``track_id``, ``artist``, ``song``, ``genre``, ``listen_pct``,
    ``completed``, ``skipped``."""

    user: UserId
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 20


class Recommendations(Query, tag="recommendations", frozen=True):
    """Tracks for one listener, best first (answered by a recommender, not a store): ``rank``,
    ``track``, ``track_id``, ``artist``, ``song``, ``genre``, ``score``, ``reason``
    (``similar listeners``, ``similar sound``, ``popular in your genres``, ``like what you
    play now``, ``popular``), and
    on every row the model that answered: ``model_version``, ``trained_at`` (epoch ms) and
    ``through_batch`` (the last batch whose listens it has seen). Tracks the listener heard
    recently are left out."""

    user: UserId
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 10


class SimilarTracks(Query, tag="similar-tracks", frozen=True):
    """Tracks that sound like ``track`` (its key, as in :class:`Interactions`, or a
    ``spotify:track:`` URI), most similar first; columns as :class:`Recommendations`."""

    track: Text
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 10


class ModelInfo(Query, tag="model-info", frozen=True):
    """One row about the recommender's model: ``model_version``, ``trained_at``,
    ``through_batch``, ``users``, ``tracks``, ``updates`` (users re-fitted since it loaded);
    no rows before a model exists."""


QUERIES: Final[tuple[type[Query], ...]] = (
    TopSongs, TopArtists, TopSkipped, GenreWindows, Engagement, ActiveUsers, Pages, States, Levels,
    LevelChanges, Genders, AuthMinutes, HourlyPlays, LatestTime, Summary, BatchTotals,
    LatestBatch, ListeningTime, Events, FilterValues, DeadLetters, DeadLetterCounts,
    DeadLetterRecords, MetricRows, Interactions, UserListens, Recommendations, SimilarTracks,
    ModelInfo,
)  # fmt: skip
AnyQuery = (
    TopSongs | TopArtists | TopSkipped | GenreWindows | Engagement | ActiveUsers | Pages
    | States | Levels | LevelChanges | Genders | AuthMinutes | HourlyPlays | LatestTime
    | Summary | BatchTotals | LatestBatch | ListeningTime | Events | FilterValues | DeadLetters
    | DeadLetterCounts | DeadLetterRecords | MetricRows | Interactions | UserListens
    | Recommendations | SimilarTracks | ModelInfo
)  # fmt: skip
"""Every query, as one type: ``msgspec.json.decode(data, type=AnyQuery)`` validates a request."""


def name_of(query: Query | type[Query]) -> str:
    """The query's name (its tag): ``top-songs``..."""
    cls = query if isinstance(query, type) else type(query)
    return str(cls.__struct_config__.tag)


RECOMMENDER: Final = frozenset(name_of(k) for k in (Recommendations, SimilarTracks, ModelInfo))
"""The queries a recommender answers (``backbeat.recommend``), never a store."""

FILTERABLE: Final = frozenset(name_of(kind) for kind in QUERIES if "keep" in kind.__struct_fields__)
"""The queries that take a :class:`ListenFilter` (``keep``): top songs, artists and skipped,
events."""


class Reader(ABC):
    """Answers named queries from one store.

    Implementations answer from any thread. Failures are :class:`~backbeat.errors.StoreError`
    (the store cannot answer now) or :class:`~backbeat.errors.UnsupportedQueryError` (this
    store never answers that query).
    """

    @abstractmethod
    def answers(self) -> frozenset[str]:
        """The names of the queries this reader answers."""

    def filters(self) -> frozenset[str]:
        """The names of the queries this reader also answers with a listen filter (a
        non-empty ``keep``, see :data:`FILTERABLE`): filtering needs the raw listens, which a
        store of aggregates does not keep. Asked with a filter, the others raise
        :class:`~backbeat.errors.UnsupportedQueryError` (or, wrongly, ignore it: callers
        check here first).

        By default: every answered query of :data:`FILTERABLE` when the reader answers
        ``events`` (it keeps the raw listens, and filters them), none otherwise. Override it
        when that does not hold.
        """
        answered = self.answers()
        if name_of(Events) not in answered:
            return frozenset()
        return answered & FILTERABLE

    @abstractmethod
    def run(self, query: Query) -> pa.Table:
        """The answer to ``query``.

        Raises:
            UnsupportedQueryError: not a query this reader answers.
            StoreError: the store cannot answer right now.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the reader holds."""

    def wait_for_commit(self, after: int, timeout_s: float) -> int | None:
        """Wait until the store announces a batch newer than ``after`` (at most
        ``timeout_s``) and return the newest batch id heard (``after``: none yet); None when
        this store announces nothing, so the caller polls :class:`LatestBatch`."""
        return None

    def one(self, query: Query) -> dict[str, Any]:
        """The single row of ``query``'s answer as a dict (queries answering one row)."""
        rows: list[dict[str, Any]] = self.run(query).to_pylist()
        return rows[0] if rows else {}

    def refuse(self, query: Query) -> UnsupportedQueryError:
        """The error for a query this reader does not answer."""
        return UnsupportedQueryError(
            f"this store does not answer {name_of(query)!r} "
            f"(it answers: {', '.join(sorted(self.answers()))})"
        )
