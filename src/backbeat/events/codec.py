"""JSON codec: Arrow batches to NDJSON bytes and back, with bad records as data.

Encoding runs in DuckDB (``to_json`` over the whole batch, one struct per null shape: null
keys are omitted, so guests carry no ``userId``). Decoding takes a batch of raw messages and returns an Arrow table of the
good ones plus a dead letter ``(raw bytes, reason)`` for each bad one; it never raises on
input. The happy path parses the whole batch at once with ``pyarrow.json``; only a batch that
fails falls back to classifying each message with msgspec, whose typed decoder names the
exact problem ("Expected `int`, got `str` - at `$.ts`").

Next: ``validate.py`` (contract rules), ``backbeat.engine`` (who calls :func:`decode_batch`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Final

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from backbeat.events.schema import FIELDS, MAX_RECORD_BYTES, Topic, arrow_schema
from backbeat.events.validate import check
from backbeat.scratch import scratch

Offsets = npt.NDArray[np.int64]


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


# --------------------------------------------------------------------------- encode


def encode_table(topic: Topic, table: pa.Table) -> bytes:
    """Encode a batch as NDJSON: one object per row, keys in contract order, nulls omitted.

    Rows are grouped by which fields are null (a batch has a few such shapes: guests, pages
    without a song, unrated listens); each shape is one ``to_json(struct_pack(...))`` of just
    its non-null fields, so no null key has to be cut out of the text afterwards.
    """
    if table.num_rows == 0:
        return b""
    names = [f.name for f in FIELDS[topic]]
    shapes, table = _null_shapes(names, table)
    if shapes is None:  # unusual batches: every key written, null ones cut out after
        line = (
            f"regexp_replace(to_json(struct_pack({_quoted(names)})), "
            """',"[A-Za-z]+":null', '', 'g')"""
        )
    elif len(shapes) == 1:
        line = f"to_json(struct_pack({_quoted(shapes[0][1])}))"
    else:
        cases = " ".join(
            f"WHEN {code} THEN to_json(struct_pack({_quoted(fields)}))" for code, fields in shapes
        )
        line = f"CASE {_SHAPE} {cases} END"
    con = scratch()
    con.register("batch", table)
    try:
        result = con.sql(f"SELECT {line} || chr(10) AS line FROM batch").to_arrow_table()
    finally:
        con.unregister("batch")
    return b"".join(_string_data(chunk) for chunk in result.column(0).chunks)


_NEWLINE: Final = ord("\n")
_OPEN_BRACE: Final = ord("{")
_SHAPE: Final = "_null_shape"
_MAX_SHAPES: Final = 16


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def _null_shapes(
    names: list[str], table: pa.Table
) -> tuple[list[tuple[int, list[str]]] | None, pa.Table]:
    """The batch's null shapes (a code, the fields that are not null) and the table to
    encode (with a ``_null_shape`` column when there are several); None: too many shapes."""
    nullable = [name for name in names if table.column(name).null_count]
    code = np.zeros(table.num_rows, dtype=np.int64)
    for bit, name in enumerate(nullable):
        code |= table.column(name).is_null().to_numpy(zero_copy_only=False).astype(np.int64) << bit
    codes = np.unique(code).tolist()
    if len(codes) > _MAX_SHAPES:
        return None, table
    shapes = []
    for c in codes:
        null = {name for bit, name in enumerate(nullable) if c >> bit & 1}
        fields = [name for name in names if name not in null]
        if not fields:
            return None, table
        shapes.append((c, fields))
    table = table.select(names)
    if len(shapes) > 1:
        table = table.append_column(_SHAPE, pa.array(code, pa.int64()))
    return shapes, table


def _string_data(array: pa.Array) -> bytes:
    """The concatenated bytes of a string array without nulls (zero per-row work)."""
    wide = array.type in (pa.large_string(), pa.large_binary())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64 if wide else np.int32)
    start, end = offsets[array.offset], offsets[array.offset + len(array)]
    return bytes(memoryview(array.buffers()[2])[start:end])


def encode_records(records: Sequence[dict[str, Any]]) -> list[bytes]:
    """Encode plain dicts (tests, tools, small producers) as one JSON document each."""
    enc = msgspec.json.Encoder()
    return [enc.encode({k: v for k, v in r.items() if v is not None}) for r in records]


# --------------------------------------------------------------------------- decode


def decode_batch(topic: Topic, payloads: Sequence[bytes], offsets: Offsets) -> Decoded:
    """Decode and validate a batch of raw JSON messages of one topic.

    Never raises on bad input: each bad message becomes a :class:`DeadLetter` with a reason
    (``not_json``, ``wrong_type``, ``missing_field``, ``out_of_range``, ``bad_value``,
    ``inconsistent``, ``too_large``, ``empty``).

    Args:
        topic: the topic all messages belong to.
        payloads: one JSON object per message, without trailing newline.
        offsets: the source position of each message (same length).
    """
    schema = arrow_schema(topic)
    n = len(payloads)
    if n == 0:
        return Decoded(schema.empty_table(), np.empty(0, np.int64), [])
    joined = b"\n".join(payloads)
    # Record bounds from the joined bytes (NumPy, without the GIL): with exactly n - 1
    # newlines, no record holds one and they are the joins.
    buf = np.frombuffer(joined, dtype=np.uint8)
    breaks = np.flatnonzero(buf == _NEWLINE)
    if len(breaks) != n - 1:
        return _decode_slow(topic, payloads, offsets)
    starts = np.concatenate(([0], breaks + 1))
    sizes = np.append(breaks, len(buf)) - starts
    if (
        ((sizes == 0) | (sizes > MAX_RECORD_BYTES)).any()
        # pyarrow.json crashes on some first tokens other than "{"
        or (buf[starts] != _OPEN_BRACE).any()
    ):
        return _decode_slow(topic, payloads, offsets)
    table = _parse(schema, joined)
    if table is None or table.num_rows != n or not _all_finite(table):
        return _decode_slow(topic, payloads, offsets)
    return _validated(topic, table, payloads, offsets, [])


def _all_finite(table: pa.Table) -> bool:
    """pyarrow.json reads the non-JSON NaN / Infinity; the slow path rejects them by name."""
    return all(
        pc.all(pc.is_finite(col), skip_nulls=True).as_py() is not False
        for col in table.columns
        if pa.types.is_floating(col.type)
    )


def _parse(schema: pa.Schema, data: bytes) -> pa.Table | None:
    """Parse NDJSON with the topic's types; every field nullable (rules come after)."""
    loose = pa.schema([f.with_nullable(True) for f in schema])
    try:
        table = pj.read_json(
            io.BytesIO(data),
            read_options=pj.ReadOptions(block_size=max(1 << 20, MAX_RECORD_BYTES * 2)),
            parse_options=pj.ParseOptions(
                explicit_schema=loose, unexpected_field_behavior="ignore"
            ),
        )
        table.validate(full=True)  # pyarrow.json lets invalid UTF-8 inside strings through
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return table.select(schema.names)


def _validated(
    topic: Topic,
    table: pa.Table,
    payloads: Sequence[bytes],
    offsets: Offsets,
    dead: list[DeadLetter],
) -> Decoded:
    return validate_table(topic, table, offsets, lambda idx: [payloads[i] for i in idx], dead)


def validate_table(
    topic: Topic,
    table: pa.Table,
    offsets: Offsets,
    raw_of: Callable[[list[int]], list[bytes]],
    dead: list[DeadLetter] | None = None,
) -> Decoded:
    """Apply the contract rules to a typed batch (any column order, nullable columns).

    Args:
        topic: whose rules apply.
        table: the batch; missing columns count as null, columns are cast to the contract.
        offsets: source position of each row.
        raw_of: the raw bytes of the rows at the given indices (for dead letters).
        dead: dead letters found earlier in the same batch, kept in the result.
    """
    dead = list(dead or [])
    loose = pa.schema([f.with_nullable(True) for f in arrow_schema(topic)])
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
        return Decoded(arrow_schema(topic).empty_table(), offsets[:0], sorted(dead, key=_offset))
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
    return Decoded(table.cast(arrow_schema(topic)), offsets[good], sorted(dead, key=_offset))


def _offset(letter: DeadLetter) -> int:
    return letter.offset


def _decode_slow(topic: Topic, payloads: Sequence[bytes], offsets: Offsets) -> Decoded:
    """Classify every message on its own, then parse the good ones as one batch."""
    decoder = _typed_decoder(topic)
    dead: list[DeadLetter] = []
    keep: list[int] = []
    for i, raw in enumerate(payloads):
        reason = _precheck(raw) or _msgspec_reason(decoder, raw)
        if reason is None:
            keep.append(i)
        else:
            dead.append(DeadLetter(bytes(raw), int(offsets[i]), reason))
    good = [payloads[i] for i in keep]
    good_offsets = offsets[np.asarray(keep, dtype=np.int64)]
    schema = arrow_schema(topic)
    table = _parse(schema, b"\n".join(good)) if good else schema.empty_table()
    if table is None or table.num_rows != len(good):
        # msgspec accepted something Arrow will not parse: find it record by record.
        tables, kept, kept_offsets = [], [], []
        for raw, off in zip(good, good_offsets.tolist(), strict=True):
            one = _parse(schema, raw)
            if one is None or one.num_rows != 1:
                dead.append(
                    DeadLetter(bytes(raw), off, "wrong_type: not parseable as the topic schema")
                )
            else:
                tables.append(one)
                kept.append(raw)
                kept_offsets.append(off)
        table = pa.concat_tables(tables) if tables else schema.empty_table()
        good, good_offsets = kept, np.asarray(kept_offsets, dtype=np.int64)
    return _validated(topic, table, good, good_offsets, dead)


def _precheck(raw: bytes) -> str | None:
    if len(raw) == 0 or raw.isspace():
        return "empty: no record"
    if len(raw) > MAX_RECORD_BYTES:
        return f"too_large: {len(raw)} bytes > {MAX_RECORD_BYTES}"
    if b"\n" in raw:
        return "not_json: raw newline inside a record"
    return None


_I64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_I32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
_PY_TYPES: Final[dict[pa.DataType, Any]] = {
    pa.int64(): _I64,
    pa.int32(): _I32,
    pa.float64(): float,
    pa.string(): str,
    pa.bool_(): bool,
}


@cache
def _typed_decoder(topic: Topic) -> msgspec.json.Decoder[Any]:
    """A msgspec decoder whose types mirror the topic's Arrow schema (types only, no rules)."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for spec in FIELDS[topic]:
        py = _PY_TYPES[spec.type]
        fields.append((spec.name, py | None, None))
    struct = msgspec.defstruct(f"{topic.value}_wire", fields, kw_only=True)
    return msgspec.json.Decoder(struct)


def _msgspec_reason(decoder: msgspec.json.Decoder[Any], raw: bytes) -> str | None:
    try:
        decoder.decode(raw)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        code = "out_of_range" if (">=" in msg or "<=" in msg) else "wrong_type"
        return f"{code}: {msg[:200]}"
    except msgspec.DecodeError as exc:
        return f"not_json: {str(exc)[:200]}"
    except UnicodeDecodeError:
        return "not_json: invalid UTF-8"
    return None
