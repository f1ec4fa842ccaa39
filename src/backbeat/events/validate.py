"""Vectorized contract checks over a decoded Arrow batch.

Every rule comes from the ``FieldSpec`` tables in ``schema.py`` plus a few cross-field rules
(completed <=> listenPct >= 0.99, skipped => not completed, NextSong page views carry the
song, logged-in users carry a userId). The fast path computes one combined "bad" mask with
Arrow compute; reasons are worked out only for the (usually few) bad rows.

Next: ``codec/results.py`` calls :func:`check` after decoding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from backbeat.events.schema import (
    COMPLETED_PCT,
    FIELDS,
    MAX_STRING_CHARS,
    FieldSpec,
    Topic,
)

Check = tuple[str, Callable[[pa.Table], pa.ChunkedArray]]
"""A named rule: (reason, function giving a boolean "row breaks the rule" mask)."""

_TOKEN_RE: Final = r"^[0-9A-Za-z_.:\-]*$"


def _col(table: pa.Table, name: str) -> pa.ChunkedArray:
    return table.column(name)


def _field_checks(spec: FieldSpec) -> Iterator[Check]:
    name = spec.name
    if spec.required:
        yield f"missing_field: {name}", lambda t: pc.is_null(_col(t, name))
    if spec.choices is not None:
        choices = pa.array(spec.choices, pa.string())
        yield (
            f"bad_value: {name} not one of {', '.join(spec.choices)}",
            lambda t: pc.and_(
                pc.is_valid(_col(t, name)),
                pc.invert(pc.is_in(_col(t, name), value_set=choices)),
            ),
        )
    if spec.lo is not None or spec.hi is not None:
        lo, hi = spec.lo, spec.hi
        yield (
            f"out_of_range: {name} not in [{_num(lo)}, {_num(hi)}]",
            lambda t: _outside(_col(t, name), lo, hi),
        )
    if pa.types.is_string(spec.type):
        lo_len, hi_len = spec.length or ((1 if spec.required else 0), MAX_STRING_CHARS)
        # Byte length bounds character length from above and is free (it reads the offsets);
        # characters are counted only where the bytes exceed the limit.
        yield (
            f"bad_value: {name} length not in [{lo_len}, {hi_len}]",
            lambda t: _bad_length(_col(t, name), lo_len, hi_len),
        )
        if spec.charset == "digits":
            yield (
                f"bad_value: {name} must be digits",
                lambda t: pc.invert(pc.utf8_is_digit(_col(t, name))),
            )
        elif spec.charset == "upper":
            yield (
                f"bad_value: {name} must be A-Z",
                lambda t: pc.invert(
                    pc.and_(pc.utf8_is_upper(_col(t, name)), pc.string_is_ascii(_col(t, name)))
                ),
            )
        elif spec.charset == "token":
            yield (
                f"bad_value: {name} must be letters, digits or _.:-",
                lambda t: pc.invert(pc.match_substring_regex(_col(t, name), _TOKEN_RE)),
            )


def _bad_length(values: pa.ChunkedArray, lo: int, hi: int) -> pa.ChunkedArray:
    n_bytes = pc.binary_length(values)
    too_short = pc.less(n_bytes, lo)
    if not pc.any(pc.greater(n_bytes, hi)).as_py():
        return too_short
    return pc.or_(too_short, pc.greater(pc.utf8_length(values), hi))


def _num(x: float | None) -> str:
    if x is None:
        return "any"
    return str(int(x)) if float(x).is_integer() else str(x)


def _outside(values: pa.ChunkedArray, lo: float | None, hi: float | None) -> pa.ChunkedArray:
    """True where a non-null value lies outside [lo, hi] (nulls are handled elsewhere)."""
    bad: pa.ChunkedArray | None = None
    if lo is not None:
        bad = pc.less(values, lo)
    if hi is not None:
        above = pc.greater(values, hi)
        bad = above if bad is None else pc.or_(bad, above)
    assert bad is not None
    return bad


def _cross_checks(topic: Topic) -> Iterator[Check]:
    known = pa.array(["Logged In", "Cancelled"])
    yield (
        "missing_field: userId (required when auth is Logged In or Cancelled)",
        lambda t: pc.and_(
            pc.is_in(_col(t, "auth"), value_set=known), pc.is_null(_col(t, "userId"))
        ),
    )
    if topic is Topic.LISTEN:
        yield (
            "inconsistent: completed must equal listenPct >= 0.99",
            lambda t: pc.not_equal(
                _col(t, "completed"), pc.greater_equal(_col(t, "listenPct"), COMPLETED_PCT)
            ),
        )
        yield (
            "inconsistent: skipped and completed both true",
            lambda t: pc.and_(_col(t, "skipped"), _col(t, "completed")),
        )
    if topic is Topic.PAGE_VIEW:
        for name in ("artist", "song", "duration"):
            yield f"missing_field: {name} (required on NextSong)", _next_song_needs(name)


def _next_song_needs(name: str) -> Callable[[pa.Table], pa.ChunkedArray]:
    def rule(t: pa.Table) -> pa.ChunkedArray:
        return pc.and_(pc.equal(_col(t, "page"), "NextSong"), pc.is_null(_col(t, name)))

    return rule


_CHECKS: Final[dict[Topic, tuple[Check, ...]]] = {
    topic: (*(c for spec in fields for c in _field_checks(spec)), *_cross_checks(topic))
    for topic, fields in FIELDS.items()
}


def check(topic: Topic, table: pa.Table) -> pa.Array:
    """Validate a decoded batch against the contract.

    Args:
        topic: the topic whose rules apply.
        table: a batch with exactly ``arrow_schema(topic)``.

    Returns:
        A string array, one entry per row: null where the row is good, else the reason
        (``"<code>: <detail>"``) of the first rule it breaks.
    """
    n = table.num_rows
    if n == 0:
        return pa.nulls(0, pa.string())
    checks = _CHECKS[topic]
    masks = [pc.fill_null(fn(table), False) for _, fn in checks]
    any_bad = masks[0]
    for mask in masks[1:]:
        any_bad = pc.or_(any_bad, mask)
    if not pc.any(any_bad).as_py():
        return pa.nulls(n, pa.string())
    reasons = pa.nulls(n, pa.string())
    for (reason, _), mask in zip(reversed(checks), reversed(masks), strict=True):
        # Walking the rules backwards leaves the first broken rule's reason in place.
        reasons = pc.if_else(mask, pa.scalar(reason), reasons)
    return reasons.combine_chunks() if isinstance(reasons, pa.ChunkedArray) else reasons
