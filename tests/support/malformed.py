"""Malformed records of every kind, built from a valid one, with the reason each must get.

Each category names a way a producer can break the contract; :data:`CATEGORIES` maps it to
the topics it applies to and the dead-letter reason prefixes the engine may give it. The
injector in ``eventlog.py`` mixes these into a log and writes a manifest of what it did.

Next: ``eventlog.py`` (the generator and injector), ``oracle.py`` (the expected results).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from backbeat.events.schema import FIELDS, Topic

Record = dict[str, Any]
Builder = Callable[[np.random.Generator, Topic, Record], bytes]

YEAR_3000_MS = 32_503_680_000_000


def dumps(rec: Record) -> bytes:
    """Compact JSON of a record, nulls omitted (like the codec), NaN allowed."""
    return json.dumps(
        {k: v for k, v in rec.items() if v is not None},
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=True,
    ).encode()


def _pick(rng: np.random.Generator, options: list[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _with(rec: Record, **changes: Any) -> bytes:
    return dumps(rec | changes)


def _not_json(rng: np.random.Generator, topic: Topic, rec: Record) -> bytes:
    raw = dumps(rec)
    return _pick(
        rng,
        [
            b"this is not json",
            b"<html><body>502 Bad Gateway</body></html>",
            b"{'ts': 1, 'single': 'quotes'}",
            b"\x00\x01\x02 binary",
            raw + b" trailing",
            raw + raw,
            raw.replace(b'"ts":', b"ts:", 1),
            # A line of a CSV export (Kaggle's spotify_history.csv): a number comes first.
            b"6potE1lWMqhk4OxmfsoGDk,2023-01-01 12:00:00,web player,3185,Sunday,Queen",
            b"42 trailing",
        ],
    )


def _truncated(rng: np.random.Generator, topic: Topic, rec: Record) -> bytes:
    raw = dumps(rec)
    return raw[: int(rng.integers(1, len(raw) - 1))]


def _missing(rng: np.random.Generator, topic: Topic, rec: Record) -> bytes:
    required = [f.name for f in FIELDS[topic] if f.required]
    name = _pick(rng, required)
    return dumps({k: v for k, v in rec.items() if k != name})


_WRONG: dict[str, list[Any]] = {
    "ts": [str(1_700_000_000_000), 1.7e12, True],
    "sessionId": ["abc", 12.5],
    "itemInSession": [1.5, "3"],
    "schemaVersion": ["1"],
    "lat": ["27.9"],
    "level": [1],
    "city": [{"name": "Tampa"}, 5, ["Tampa"]],
    "zip": [12345],
    "userId": ["42", 4.2],
}
_WRONG_BY_TOPIC: dict[Topic, dict[str, list[Any]]] = {
    Topic.LISTEN: {
        "completed": [1, "true"],
        "listenPct": ["0.5"],
        "duration": [[200]],
        "genre": [5],
    },
    Topic.PAGE_VIEW: {"status": ["200"], "page": [False]},
    Topic.AUTH: {"success": ["yes", 0]},
    Topic.STATUS_CHANGE: {"prevLevel": [False]},
}


def _wrong_type(rng: np.random.Generator, topic: Topic, rec: Record) -> bytes:
    table = _WRONG | _WRONG_BY_TOPIC[topic]
    name = _pick(rng, sorted(table))
    return _with(rec, **{name: _pick(rng, table[name])})


def _too_large(rng: np.random.Generator, topic: Topic, rec: Record) -> bytes:
    return _with(rec, **{_pick(rng, ["city", "userAgent", "lastName"]): "x" * (1 << 20)})


def _long_string(rng: np.random.Generator, topic: Topic, rec: Record) -> bytes:
    return _with(rec, **{_pick(rng, ["city", "userAgent"]): "y" * 2000})


def _far_future(rng: np.random.Generator, topic: Topic, rec: Record) -> bytes:
    return _with(rec, ts=YEAR_3000_MS + int(rng.integers(1_000_000)))


def _out_of_range(rng: np.random.Generator, topic: Topic, rec: Record) -> bytes:
    options: list[dict[str, Any]] = [
        {"lat": 123.0},
        {"lon": -200.5},
        {"sessionId": -1},
        {"itemInSession": -4},
        {"schemaVersion": 9},
    ]
    if topic is Topic.LISTEN:
        options += [{"rating": 9.0}, {"duration": 0.0}, {"msPlayed": -1}]
    if topic is Topic.PAGE_VIEW:
        options += [{"status": 999}]
    return _with(rec, **_pick(rng, options))


def _bad_enum(rng: np.random.Generator, topic: Topic, rec: Record) -> bytes:
    options: list[dict[str, Any]] = [{"level": "gold"}, {"auth": "Admin"}, {"gender": "X"}]
    if topic is Topic.LISTEN:
        options += [{"platform": "fax"}, {"mood": "meh"}]
    if topic is Topic.PAGE_VIEW:
        options += [{"method": "POST"}]
    if topic is Topic.STATUS_CHANGE:
        options += [{"prevLevel": "premium"}]
    return _with(rec, **_pick(rng, options))


def _bad_charset(rng: np.random.Generator, topic: Topic, rec: Record) -> bytes:
    return _with(
        rec,
        **_pick(
            rng,
            [
                {"zip": "1234A"},
                {"state": "fl"},
                {"eventId": "a b"},
                {"eventId": ""},
                {"state": "ÄÖ"},
            ],
        ),
    )


def _inconsistent(rng: np.random.Generator, topic: Topic, rec: Record) -> bytes:
    assert topic is Topic.LISTEN
    return _with(
        rec,
        **_pick(
            rng,
            [
                {"completed": True, "listenPct": 0.5, "skipped": False},
                {"completed": False, "listenPct": 1.0, "skipped": False},
                {"completed": True, "listenPct": 1.0, "skipped": True},
            ],
        ),
    )


def _empty(rng: np.random.Generator, topic: Topic, rec: Record) -> bytes:
    return _pick(rng, [b"", b"   ", b"\t"])


def _not_object(rng: np.random.Generator, topic: Topic, rec: Record) -> bytes:
    return _pick(rng, [b"[1, 2, 3]", b"42", b'"listen"', b"true", b"[]"])


def _json_null(rng: np.random.Generator, topic: Topic, rec: Record) -> bytes:
    return b"null"


def _nan(rng: np.random.Generator, topic: Topic, rec: Record) -> bytes:
    if topic is Topic.LISTEN:
        return _with(rec, **{_pick(rng, ["rating", "listenPct", "lat"]): float("nan")})
    return _with(rec, lat=float("nan"))


def _bad_utf8(rng: np.random.Generator, topic: Topic, rec: Record) -> bytes:
    name = "genre" if topic is Topic.LISTEN and rng.random() < 0.5 else "city"
    return _with(rec, **{name: "@@BAD@@"}).replace(b"@@BAD@@", b"R\xffck")


@dataclass(frozen=True, slots=True)
class Category:
    """A kind of malformed record: how to build it, where, and the reasons it may get."""

    build: Builder
    prefixes: tuple[str, ...]
    topics: tuple[Topic, ...] = tuple(Topic)


CATEGORIES: dict[str, Category] = {
    "not_json": Category(_not_json, ("not_json",)),
    "truncated": Category(_truncated, ("not_json",)),
    "missing_field": Category(_missing, ("missing_field",)),
    "wrong_type": Category(_wrong_type, ("wrong_type",)),
    "too_large": Category(_too_large, ("too_large",)),
    "long_string": Category(_long_string, ("bad_value",)),
    "far_future": Category(_far_future, ("out_of_range",)),
    "out_of_range": Category(_out_of_range, ("out_of_range",)),
    "bad_enum": Category(_bad_enum, ("bad_value",)),
    "bad_charset": Category(_bad_charset, ("bad_value",)),
    "inconsistent": Category(_inconsistent, ("inconsistent",), (Topic.LISTEN,)),
    "empty": Category(_empty, ("empty",)),
    "not_object": Category(_not_object, ("wrong_type",)),
    # Any record not starting with "{" is classified record by record: "not an object".
    "json_null": Category(_json_null, ("wrong_type",)),
    "nan": Category(_nan, ("not_json",)),
    "bad_utf8": Category(_bad_utf8, ("not_json",)),
}
UNKNOWN_TOPIC = "unknown_topic"
"""Category of every line of ``bogus_events.jsonl`` (reason prefix ``unknown_topic``)."""

STANDARD = tuple(CATEGORIES)
"""The categories mixed into logs by default: all of them."""
