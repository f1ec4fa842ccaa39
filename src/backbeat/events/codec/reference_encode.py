"""The reference encoder: Arrow batches to JSON with DuckDB and pyarrow, no C of our own.

Each row becomes one object, keys in contract order, null keys omitted (guests carry no
``userId``), written by DuckDB's ``to_json``: this is what the contract's JSON looks like, and
the C core (``c_core.py``) must write exactly the same bytes or hand the batch back here.
Message keys (:func:`prefixed_ints`) come from ``pyarrow.compute``.

Next: ``reference_decode.py`` (the way back), ``c_core.py`` (the C core's adapter).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from backbeat.events.schema import FIELDS, Topic
from backbeat.scratch import scratch

_SHAPE: Final = "_null_shape"
_MAX_SHAPES: Final = 16


def encode_table(topic: Topic, table: pa.Table) -> bytes:
    """The batch as NDJSON: one object per row, each line ending in a newline."""
    if table.num_rows == 0:
        return b""
    return _duckdb_encode(topic, table)


def encode_array(topic: Topic, table: pa.Table) -> pa.LargeBinaryArray:
    """The lines of :func:`encode_table` without their newlines, one array item each."""
    rows = encode_table(topic, table).split(b"\n")[:-1]
    return pa.array(rows, pa.large_binary())


def prefixed_ints(columns: Sequence[tuple[str, pa.ChunkedArray]]) -> pa.LargeBinaryArray:
    """Per row, the prefix and decimal value of the first column not null there (``b""``
    if all are)."""
    n = len(columns[0][1]) if columns else 0
    joined = pa.nulls(n, pa.string())
    for prefix, column in reversed(columns):
        array = one_chunk(column)
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
