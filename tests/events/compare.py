"""Exact comparison of two codec implementations' results (``test_jsonfast.py``,
``fuzz_codec.py``): the C core must give the reference's, to the byte and the reason; and
a check of the reasons themselves against the standard library's JSON parser.

Next: ``backbeat.events.codec`` (``python`` and ``native``).
"""

from __future__ import annotations

import json
from typing import Any

from backbeat.events.codec import Decoded

NOT_JSON_CODES = ("not_json", "empty", "too_large")
"""The reasons a record that is not one JSON document may get (the size is checked first)."""


def assert_same(a: Decoded, b: Decoded) -> None:
    """The same table (schema, values, chunk-independent), offsets and dead letters."""
    assert a.table.schema == b.table.schema
    assert a.table.to_pylist() == b.table.to_pylist()
    assert a.table.equals(b.table)
    assert a.offsets.tolist() == b.offsets.tolist()
    assert a.dead == b.dead


def is_json(raw: bytes) -> bool:
    """True if ``raw`` is one JSON document by its syntax (no NaN, nothing after it), by the
    standard library: an oracle independent of the codec's msgspec. Bytes that are not UTF-8
    inside a string do not count here (a key the topic does not know may hold them: whether
    that is taken is the codec's own rule)."""

    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    try:
        json.loads(raw.decode("utf-8", errors="surrogateescape"), parse_constant=refuse)
    except (ValueError, RecursionError):
        return False
    return True


def assert_reasons_fit(out: Decoded) -> None:
    """A dead letter that is not JSON at all says so (a CSV line is not a "wrong_type")."""
    for dead in out.dead:
        if not is_json(dead.raw):
            assert dead.reason.startswith(NOT_JSON_CODES), (dead.raw[:80], dead.reason)
