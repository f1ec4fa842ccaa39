"""Arrow tables in and out of PostgreSQL: bulk ``COPY`` for writes, typed columns for reads.

Writes go through ``COPY ... FROM STDIN (FORMAT csv)`` fed by Arrow's own CSV writer (C++,
every string quoted, nulls as empty fields), so a batch's rows never pass through Python one
by one; binary columns, which CSV cannot carry, go row by row through psycopg's COPY (dead
letters only, a handful per batch). Reads turn a cursor's rows into Arrow columns of the
types the embedded store answers with (``BIGINT`` -> int64, ``NUMERIC(p, s)`` ->
decimal128, ``TIMESTAMP`` -> timestamp[us]...).

Next: ``store.py`` (the writes), ``reader.py`` (the reads).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any, Final

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

_CSV: Final = pacsv.WriteOptions(include_header=False, quoting_style="needed")
_BY_OID: Final[dict[int, pa.DataType]] = {
    16: pa.bool_(),
    17: pa.binary(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    25: pa.string(),
    700: pa.float32(),
    701: pa.float64(),
    1043: pa.string(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
    1022: pa.list_(pa.float64()),
}
_NUMERIC: Final = 1700


def copy_in(cur: psycopg.Cursor[Any], table: str, columns: Sequence[str], rows: pa.Table) -> None:
    """Append ``rows`` (columns in the order of ``columns``) to ``table`` with one COPY."""
    if not rows.num_rows:
        return
    target = sql.SQL("COPY {t} ({c}) FROM STDIN (FORMAT csv)").format(
        t=sql.Identifier(table), c=sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    if any(pa.types.is_binary(t) or pa.types.is_large_binary(t) for t in rows.schema.types):
        with cur.copy(sql.SQL("COPY {t} ({c}) FROM STDIN").format(
            t=sql.Identifier(table), c=sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        )) as copy:  # fmt: skip
            for row in zip(*(col.to_pylist() for col in rows.columns), strict=True):
                copy.write_row(row)
        return
    buffer = io.BytesIO()
    pacsv.write_csv(rows, buffer, _CSV)
    with cur.copy(target) as copy:
        copy.write(buffer.getbuffer())


def to_arrow(cur: psycopg.Cursor[Any]) -> pa.Table:
    """The rows of the cursor's last query as an Arrow table, typed by their SQL types."""
    description = cur.description or []
    rows = cur.fetchall()
    names = [d.name for d in description]
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = []
    for d, values in zip(description, columns, strict=True):
        if d.type_code == _NUMERIC:
            kind: pa.DataType | None = (
                pa.decimal128(d.precision, d.scale)
                if d.precision is not None and d.scale is not None
                else pa.float64()
            )
            if pa.types.is_floating(kind):
                values = tuple(None if v is None else float(v) for v in values)
        else:
            kind = _BY_OID.get(d.type_code)
        arrays.append(pa.array(values, type=kind))
    return pa.Table.from_arrays(arrays, names=names)
