"""What decoding returns, and the contract check that every decoded batch goes through.

:class:`Decoded` holds a batch's good records (an Arrow table of the topic's schema) with
their source offsets, and a :class:`DeadLetter` (raw bytes, offset, reason) for each bad one.
:func:`validate_table` makes one from any typed batch by applying the contract's rules
(``backbeat.events.validate.check``). Both codec implementations end here (the reference
decoder, ``reference_decode.py``, and the C core's adapter, ``c_core.py``), and so does the
engine for batches that arrive already typed.

Next: ``reference_decode.py`` (JSON into such a batch), ``../validate.py`` (the rules).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from backbeat.events.schema import SCHEMA_VERSION, Topic, arrow_schema
from backbeat.events.validate import check

Offsets = npt.NDArray[np.int64]
_LETTER: Final = {
    Topic.LISTEN: "l",
    Topic.PAGE_VIEW: "p",
    Topic.AUTH: "a",
    Topic.STATUS_CHANGE: "s",
}


def derived_event_id(topic: Topic, raw: bytes) -> str:
    """The ``eventId`` of a record that came without one: its topic's letter and a hash of
    the record's bytes (``l-3fa2...``: 24 hex digits), so the same record always gets the
    same id and a repeat of it is a duplicate."""
    return f"{_LETTER[topic]}-{hashlib.blake2b(raw, digest_size=12).hexdigest()}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that broke the contract: its raw bytes, its position and why."""

    raw: bytes
    offset: int
    reason: str


@dataclass(frozen=True, slots=True)
class Decoded:
    """Result of decoding one batch of one topic.

    Attributes:
        table: good records, ``arrow_schema(topic)``, in input order.
        offsets: source position of each good record (same order as ``table``).
        dead: the bad records with reasons.
    """

    table: pa.Table
    offsets: Offsets
    dead: list[DeadLetter]


def empty(topic: Topic) -> Decoded:
    """The result of decoding no messages."""
    return Decoded(arrow_schema(topic).empty_table(), np.empty(0, np.int64), [])


@cache
def loose_schema(topic: Topic) -> pa.Schema:
    """The topic's schema with every field nullable (parsing comes before the rules)."""
    return pa.schema([f.with_nullable(True) for f in arrow_schema(topic)])


def by_offset(letter: DeadLetter) -> int:
    """Sort key: dead letters are listed in source order."""
    return letter.offset


def validated(
    topic: Topic,
    table: pa.Table,
    payloads: Sequence[bytes],
    offsets: Offsets,
    dead: list[DeadLetter],
) -> Decoded:
    """:func:`validate_table` of a batch parsed from ``payloads`` (row i from payload i)."""
    return validate_table(topic, table, offsets, lambda idx: [payloads[i] for i in idx], dead)


def validate_table(
    topic: Topic,
    table: pa.Table,
    offsets: Offsets,
    raw_of: Callable[[list[int]], list[bytes]],
    dead: list[DeadLetter] | None = None,
) -> Decoded:
    """Apply the contract rules to a typed batch (any column order, nullable columns).

    Never raises on bad values: a batch whose columns do not cast to the contract's types
    becomes dead letters (``wrong_type``) whole, a row that breaks a rule one dead letter.

    Args:
        topic: whose rules apply.
        table: the batch; missing columns count as null, columns are cast to the contract.
        offsets: source position of each row.
        raw_of: the raw bytes of the rows at the given indices (for dead letters).
        dead: dead letters found earlier in the same batch, kept in the result.
    """
    dead = list(dead or [])
    loose = loose_schema(topic)
    try:
        table = pa.table(
            [
                table.column(f.name).cast(f.type)
                if f.name in table.column_names
                else pa.nulls(table.num_rows, f.type)
                for f in loose
            ],
            schema=loose,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        reason = f"wrong_type: {str(exc)[:200]}"
        every = list(range(table.num_rows))
        dead += [
            DeadLetter(r, int(offsets[i]), reason)
            for i, r in zip(every, raw_of(every), strict=True)
        ]
        return Decoded(arrow_schema(topic).empty_table(), offsets[:0], sorted(dead, key=by_offset))
    reasons = check(topic, table)
    good = np.ones(table.num_rows, dtype=bool)
    if reasons.null_count != len(reasons):
        bad_idx = np.flatnonzero(pc.is_valid(reasons).to_numpy(zero_copy_only=False)).tolist()
        bad_reasons = reasons.take(pa.array(bad_idx, pa.int64())).to_pylist()
        dead += [
            DeadLetter(raw, int(offsets[i]), r)
            for i, raw, r in zip(bad_idx, raw_of(bad_idx), bad_reasons, strict=True)
        ]
        good[bad_idx] = False
        table = table.filter(pa.array(good))
    table = _with_additions(topic, table, np.flatnonzero(good), raw_of)
    return Decoded(table.cast(arrow_schema(topic)), offsets[good], sorted(dead, key=by_offset))


def _with_additions(
    topic: Topic,
    table: pa.Table,
    rows: npt.NDArray[np.intp],
    raw_of: Callable[[list[int]], list[bytes]],
) -> pa.Table:
    """Fill what a producer may leave out: ``eventId`` derived from the record's bytes
    (``rows``: each row's index in the input, for ``raw_of``), ``schemaVersion`` the current."""
    ids = table.column("eventId").combine_chunks()
    if ids.null_count:
        missing = pc.is_null(ids)
        at = np.flatnonzero(missing.to_numpy(zero_copy_only=False))
        derived = pa.array(
            [derived_event_id(topic, raw) for raw in raw_of(rows[at].tolist())], pa.string()
        )
        index = table.schema.get_field_index("eventId")
        table = table.set_column(index, "eventId", pc.replace_with_mask(ids, missing, derived))
    version = table.column("schemaVersion")
    if version.null_count:
        index = table.schema.get_field_index("schemaVersion")
        table = table.set_column(
            index, "schemaVersion", pc.fill_null(version, pa.scalar(SCHEMA_VERSION, pa.int32()))
        )
    return table
