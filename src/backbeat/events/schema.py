"""The event contract: topics, field names, Arrow schemas and value rules.

This module is the single source of truth for what an event looks like. Field names follow
eventsim's Kafka fork (the names Streamify consumes). backbeat's additions (``eventId``,
``schemaVersion``, and on listens ``trackId``, ``genre``, ``platform``, ``mood``, ``listenPct``...)
are optional, so records in the fork's own format are accepted as they are: a missing
``eventId`` is derived from the record (``codec/results.py``), the rest count as unknown. The JSON codec (``codec/``) and the vectorized validator (``validate.py``) are
both derived from the tables here, so a rule is written once.

Next: ``codec/`` (bytes <-> Arrow) and ``validate.py`` (contract checks on an Arrow batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

import pyarrow as pa

SCHEMA_VERSION: Final = 1


class Topic(StrEnum):
    """The four event topics, named as eventsim's Kafka fork names them."""

    LISTEN = "listen_events"
    PAGE_VIEW = "page_view_events"
    AUTH = "auth_events"
    STATUS_CHANGE = "status_change_events"


TOPICS: Final = tuple(Topic)

LEVELS: Final = ("free", "paid")
AUTHS: Final = ("Guest", "Logged In", "Logged Out", "Cancelled")
GENDERS: Final = ("M", "F")
METHODS: Final = ("GET", "PUT")
PLATFORMS: Final = ("ios", "android", "web", "desktop", "tv", "car", "speaker")
MOODS: Final = ("happy", "sad", "energetic", "chill", "romantic", "angry", "focus", "party")

# Epoch-millisecond bounds for `ts` and `registration`: anything outside is out of contract.
TS_MIN_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z
TS_MAX_MS: Final = 4_102_444_800_000  # 2100-01-01T00:00:00Z
MAX_STRING_CHARS: Final = 1024
MAX_RECORD_BYTES: Final = 64 * 1024
COMPLETED_PCT: Final = 0.99  # completed <=> listenPct >= COMPLETED_PCT


Charset = Literal["digits", "upper", "token"]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of the contract.

    Attributes:
        name: JSON key (eventsim / Streamify spelling).
        type: Arrow type of the column.
        required: the key must be present and non-null.
        choices: allowed values for a categorical string.
        lo, hi: inclusive numeric bounds.
        length: inclusive (min, max) length of a string, in characters.
        charset: what a string may contain: "digits", "upper" (A-Z) or "token"
            (ASCII letters, digits and ``_.:-``).
    """

    name: str
    type: pa.DataType
    required: bool = True
    choices: tuple[str, ...] | None = None
    lo: float | None = None
    hi: float | None = None
    length: tuple[int, int] | None = None
    charset: Charset | None = None


_STR = pa.string()
_I64 = pa.int64()
_I32 = pa.int32()
_F64 = pa.float64()
_BOOL = pa.bool_()

COMMON_FIELDS: Final = (
    FieldSpec("ts", _I64, lo=TS_MIN_MS, hi=TS_MAX_MS),
    # backbeat's addition: derived from the record when a producer does not send it.
    FieldSpec("eventId", _STR, required=False, length=(1, 64), charset="token"),
    FieldSpec("schemaVersion", _I32, required=False, lo=1, hi=SCHEMA_VERSION),
    FieldSpec("sessionId", _I64, lo=0, hi=2**62),
    FieldSpec("itemInSession", _I32, lo=0, hi=2**31 - 1),
    # eventsim always sends the level and where: a replayed history may not know them.
    FieldSpec("level", _STR, required=False, choices=LEVELS),
    FieldSpec("auth", _STR, choices=AUTHS),
    FieldSpec("city", _STR, required=False),
    FieldSpec("zip", _STR, required=False, length=(5, 5), charset="digits"),
    FieldSpec("state", _STR, required=False, length=(2, 2), charset="upper"),
    FieldSpec("lat", _F64, required=False, lo=-90, hi=90),
    FieldSpec("lon", _F64, required=False, lo=-180, hi=180),
    FieldSpec("userAgent", _STR, required=False),
    # Known users only: absent for guests and logged-out visitors.
    FieldSpec("userId", _I64, required=False, lo=0, hi=2**62),
    FieldSpec("firstName", _STR, required=False),
    FieldSpec("lastName", _STR, required=False),
    FieldSpec("gender", _STR, required=False, choices=GENDERS),
    FieldSpec("registration", _I64, required=False, lo=TS_MIN_MS, hi=TS_MAX_MS),
)

LISTEN_FIELDS: Final = (
    FieldSpec("artist", _STR),
    FieldSpec("song", _STR),
    # eventsim's own; a replayed history knows it only where the catalog does.
    FieldSpec("duration", _F64, required=False, lo=0.001, hi=86_400),
    # backbeat's additions: optional, so eventsim's Kafka-fork records are accepted as they
    # are; the metrics count a missing one as "unknown".
    FieldSpec("trackId", _STR, required=False),
    FieldSpec("album", _STR, required=False),
    FieldSpec("genre", _STR, required=False),
    FieldSpec("platform", _STR, required=False, choices=PLATFORMS),
    FieldSpec("country", _STR, required=False, length=(2, 2), charset="upper"),
    FieldSpec("mood", _STR, required=False, choices=MOODS),
    FieldSpec("msPlayed", _I64, required=False, lo=0, hi=86_400_000),
    FieldSpec("listenPct", _F64, required=False, lo=0, hi=1),
    FieldSpec("completed", _BOOL, required=False),
    FieldSpec("skipped", _BOOL, required=False),
    FieldSpec("rating", _F64, required=False, lo=1, hi=5),
)

PAGE_VIEW_FIELDS: Final = (
    FieldSpec("page", _STR),
    FieldSpec("method", _STR, choices=METHODS),
    FieldSpec("status", _I32, lo=100, hi=599),
    FieldSpec("artist", _STR, required=False),
    FieldSpec("song", _STR, required=False),
    FieldSpec("duration", _F64, required=False, lo=0.001, hi=86_400),
)

AUTH_FIELDS: Final = (FieldSpec("success", _BOOL),)

STATUS_CHANGE_FIELDS: Final = (FieldSpec("prevLevel", _STR, choices=LEVELS),)

FIELDS: Final[dict[Topic, tuple[FieldSpec, ...]]] = {
    Topic.LISTEN: COMMON_FIELDS + LISTEN_FIELDS,
    Topic.PAGE_VIEW: COMMON_FIELDS + PAGE_VIEW_FIELDS,
    Topic.AUTH: COMMON_FIELDS + AUTH_FIELDS,
    Topic.STATUS_CHANGE: COMMON_FIELDS + STATUS_CHANGE_FIELDS,
}


def arrow_schema(topic: Topic) -> pa.Schema:
    """The Arrow schema of a topic's decoded batch (field order = contract order)."""
    return _SCHEMAS[topic]


_SCHEMAS: Final = {
    topic: pa.schema([pa.field(f.name, f.type, nullable=not f.required) for f in fields])
    for topic, fields in FIELDS.items()
}


def parse_topic(name: str) -> Topic | None:
    """The topic called ``name``, or None if backbeat does not know it."""
    try:
        return Topic(name)
    except ValueError:
        return None
