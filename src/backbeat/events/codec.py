"""JSON codec: Arrow batches to NDJSON bytes and back, with bad records as data.

Both directions have a C core (sources in ``_c/``, the module ``_jsonfast``, built with the
package; optional) that runs without the GIL and takes only what it is sure of, and a Python
path that does the rest and is what runs when the core was not built:

- Encoding writes one object per row, keys in contract order, null keys omitted (guests carry
  no ``userId``). The core writes exactly what DuckDB's ``to_json`` writes; a batch with a
  value it does not write that way (a double with more than 15 significant digits, say) is
  encoded by DuckDB (``to_json`` over the whole batch, one struct per null shape).
- Decoding takes a batch of raw messages and returns an Arrow table of the good ones plus a
  dead letter ``(raw bytes, reason)`` for each bad one; it never raises on input. The core
  parses strict JSON straight into Arrow buffers and declines anything unusual; without it
  the whole batch is parsed at once with ``pyarrow.json``. Declined records, and a batch
  that fails, fall back to classifying each message with msgspec, whose typed decoder names
  the exact problem ("Expected `int`, got `str` - at `$.ts`").

Next: ``validate.py`` (contract rules), ``backbeat.engine`` (who calls :func:`decode_batch`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from types import ModuleType
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

_native: ModuleType | None
try:
    from backbeat.events import _jsonfast as _native
except ImportError:  # built without a C compiler: the Python paths do everything
    _native = None

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
    """Encode a batch as NDJSON: one object per row, keys in contract order, nulls omitted."""
    if table.num_rows == 0:
        return b""
    if _native is not None:
        encoded = _native_encode(_native, topic, table, packed=False)
        if isinstance(encoded, bytes):
            return encoded
    return _duckdb_encode(topic, table)


def encode_array(topic: Topic, table: pa.Table) -> pa.LargeBinaryArray:
    """The rows of :func:`encode_table` as one JSON document each (no newline), in an Arrow
    array: the C core writes them all into one buffer, no Python object per row."""
    if table.num_rows and _native is not None:
        encoded = _native_encode(_native, topic, table, packed=True)
        if isinstance(encoded, pa.Buffer):
            return _packed(encoded, table.num_rows)
    rows = _duckdb_encode(topic, table).split(b"\n")[:-1] if table.num_rows else []
    return pa.array(rows, pa.large_binary())


def _packed(buffer: pa.Buffer, n: int) -> pa.LargeBinaryArray:
    """The C core's packed rows (n + 1 int64 ends, then the bytes) as an Arrow array, no copy."""
    head = (n + 1) * 8
    array: pa.LargeBinaryArray = pa.Array.from_buffers(
        pa.large_binary(), n, [None, buffer.slice(0, head), buffer.slice(head)]
    )
    return array


_KINDS: Final[dict[pa.DataType, str]] = {
    pa.string(): "s",
    pa.int64(): "l",
    pa.int32(): "i",
    pa.float64(): "d",
    pa.bool_(): "b",
}


@cache
def _wire(topic: Topic) -> tuple[tuple[bytes, ...], tuple[bytes, ...], str]:
    """The topic's field names, their ``"name":`` key prefixes and the core's kind codes."""
    fields = FIELDS[topic]
    names = tuple(f.name.encode() for f in fields)
    return (
        names,
        tuple(b'"' + name + b'":' for name in names),
        "".join(_KINDS[f.type] for f in fields),
    )


def _native_encode(
    native: ModuleType, topic: Topic, table: pa.Table, packed: bool
) -> bytes | pa.Buffer | None:
    """The C core's encoding, or None where DuckDB must do it (another column type, or a
    value the core does not write as DuckDB does)."""
    columns = []
    for spec in FIELDS[topic]:
        column = table.column(spec.name)
        if column.type != spec.type:
            return None
        array = one_chunk(column)
        buffers = array.buffers()
        validity = buffers[0] if array.null_count else None
        if spec.type == pa.string():
            columns.append((validity, buffers[2], buffers[1], array.offset))
        else:
            columns.append((validity, buffers[1], None, array.offset))
    _, keys, kinds = _wire(topic)
    encoded = native.encode(keys, kinds, columns, table.num_rows, packed)
    if packed and encoded is not None:
        return pa.py_buffer(encoded)
    joined: bytes | None = encoded
    return joined


def _duckdb_encode(topic: Topic, table: pa.Table) -> bytes:
    """Rows are grouped by which fields are null (a batch has a few such shapes: guests, pages
    without a song, unrated listens); each shape is one ``to_json(struct_pack(...))`` of just
    its non-null fields, so no null key has to be cut out of the text afterwards."""
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


def prefixed_ints(columns: Sequence[tuple[str, pa.ChunkedArray]]) -> pa.LargeBinaryArray:
    """Per row, the prefix and decimal value of the first int64 column not null there (``b""``
    if all are): message keys such as ``b"u123"`` (user 123) or ``b"s7"`` (session 7)."""
    n = len(columns[0][1]) if columns else 0
    arrays = [(prefix, one_chunk(c)) for prefix, c in columns]
    if _native is not None and all(a.type == pa.int64() for _, a in arrays):
        specs = [
            (p.encode(), a.buffers()[0] if a.null_count else None, a.buffers()[1], a.offset)
            for p, a in arrays
        ]
        return _packed(pa.py_buffer(_native.int_keys(specs, n)), n)
    joined = pa.nulls(n, pa.string())
    for prefix, array in reversed(arrays):
        text = pc.binary_join_element_wise(prefix, array.cast(pa.string()), "")
        joined = pc.if_else(pc.is_null(array), joined, text)
    keys: pa.LargeBinaryArray = pc.fill_null(joined, "").cast(pa.large_binary())
    return keys


def one_chunk(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array: its only chunk as is (no copy), else the chunks joined."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


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
    if len(payloads) == 0:
        return Decoded(arrow_schema(topic).empty_table(), np.empty(0, np.int64), [])
    if _native is not None:
        return _decode_native(_native, topic, list(payloads), offsets)
    return _decode_python(topic, payloads, offsets)


def _decode_native(
    native: ModuleType, topic: Topic, payloads: list[bytes], offsets: Offsets
) -> Decoded:
    """The C core parses the records it takes; those it declines go the Python way. Both
    parts are decoded with input positions for offsets, merged in input order, then mapped
    back to the source offsets."""
    names, _, kinds = _wire(topic)
    rows, declined, columns = native.parse(payloads, names, kinds, MAX_RECORD_BYTES)
    loose = _loose(topic)
    table = pa.table(
        [_array(f.type, rows, column) for f, column in zip(loose, columns, strict=True)],
        schema=loose,
    )
    if not declined:
        return _validated(topic, table, payloads, offsets, [])
    taken = np.ones(len(payloads), dtype=bool)
    taken[declined] = False
    kept = np.flatnonzero(taken)
    fast = validate_table(topic, table, kept, lambda idx: [payloads[i] for i in kept[idx]])
    rest = _decode_python(topic, [payloads[i] for i in declined], np.asarray(declined, np.int64))
    positions = np.concatenate([fast.offsets, rest.offsets])
    order = np.argsort(positions, kind="stable")
    merged = pa.concat_tables([fast.table, rest.table]).take(pa.array(order))
    dead = sorted(fast.dead + rest.dead, key=_offset)
    return Decoded(
        merged,
        offsets[positions[order]],
        [DeadLetter(d.raw, int(offsets[d.offset]), d.reason) for d in dead],
    )


def _array(type_: pa.DataType, rows: int, column: tuple[Any, Any, Any, int]) -> pa.Array:
    """An Arrow array over the C core's buffers of one column (no copy)."""
    validity, values, data, nulls = column
    buffers = [None if validity is None else pa.py_buffer(validity), pa.py_buffer(values)]
    if data is not None:
        buffers.append(pa.py_buffer(data))
    return pa.Array.from_buffers(type_, rows, buffers, null_count=nulls)


@cache
def _loose(topic: Topic) -> pa.Schema:
    """The topic's schema with every field nullable (parsing comes before the rules)."""
    return pa.schema([f.with_nullable(True) for f in arrow_schema(topic)])


def _decode_python(topic: Topic, payloads: Sequence[bytes], offsets: Offsets) -> Decoded:
    """The whole batch through ``pyarrow.json``, or message by message if that fails."""
    n = len(payloads)
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
    table = _parse(topic, joined)
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


def _parse(topic: Topic, data: bytes) -> pa.Table | None:
    """Parse NDJSON with the topic's types; every field nullable (rules come after)."""
    loose = _loose(topic)
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
    return table.select(loose.names)


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
    loose = _loose(topic)
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
    table = _parse(topic, b"\n".join(good)) if good else schema.empty_table()
    if table is None or table.num_rows != len(good):
        # msgspec accepted something Arrow will not parse: find it record by record.
        tables, kept, kept_offsets = [], [], []
        for raw, off in zip(good, good_offsets.tolist(), strict=True):
            one = _parse(topic, raw)
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
