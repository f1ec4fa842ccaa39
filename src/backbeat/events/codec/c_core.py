"""The adapter to the codec's C core: the same four operations, faster, on what it is sure of.

The core (sources in ``../_c/``, the optional extension ``backbeat.events._jsonfast``) runs
without the GIL over Arrow buffers. It takes only what it is sure of and this adapter hands
the rest to the reference path, so results are the reference's by construction:

- Encoding writes exactly what DuckDB's ``to_json`` writes; a batch with another column type
  or a value the core does not write that way (a double with more than 15 significant
  digits, say) is encoded by ``reference_encode.py``.
- Decoding parses strict JSON straight into Arrow buffers and declines anything unusual
  (escaped keys, a key twice, numbers the contract's types do not take...); the declined
  records go through ``reference_decode.py`` and both parts are merged in input order.

:class:`NativeCodec` wraps a loaded core module; :func:`load` finds the built one.

Next: ``__init__.py`` (the interface that picks it), ``../_jsonfast.pyi`` (the core's types).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from types import ModuleType
from typing import Any, Final

import numpy as np
import pyarrow as pa

from backbeat.events.codec import reference_decode, reference_encode
from backbeat.events.codec.reference_encode import one_chunk
from backbeat.events.codec.results import (
    DeadLetter,
    Decoded,
    Offsets,
    by_offset,
    empty,
    loose_schema,
    validate_table,
    validated,
)
from backbeat.events.schema import FIELDS, MAX_RECORD_BYTES, Topic

MODULE: Final = "backbeat.events._jsonfast"
"""The built core's import name (``[[tool.setuptools.ext-modules]]`` in ``pyproject.toml``)."""

_KINDS: Final[dict[pa.DataType, str]] = {
    pa.string(): "s",
    pa.int64(): "l",
    pa.int32(): "i",
    pa.float64(): "d",
    pa.bool_(): "b",
}


class NativeCodec:
    """The codec on a C core module (the built ``_jsonfast``, or any build of its sources)."""

    name: Final = "native"

    def __init__(self, module: ModuleType) -> None:
        self.module = module

    def encode_table(self, topic: Topic, table: pa.Table) -> bytes:
        """As ``reference_encode.encode_table``."""
        if table.num_rows:
            encoded = self._encode(topic, table, packed=False)
            if isinstance(encoded, bytes):
                return encoded
        return reference_encode.encode_table(topic, table)

    def encode_array(self, topic: Topic, table: pa.Table) -> pa.LargeBinaryArray:
        """As ``reference_encode.encode_array``; the core writes all rows into one buffer,
        no Python object per row."""
        if table.num_rows:
            encoded = self._encode(topic, table, packed=True)
            if encoded is not None:
                return _packed(pa.py_buffer(encoded), table.num_rows)
        return reference_encode.encode_array(topic, table)

    def prefixed_ints(self, columns: Sequence[tuple[str, pa.ChunkedArray]]) -> pa.LargeBinaryArray:
        """As ``reference_encode.prefixed_ints`` (int64 columns; others go that way)."""
        n = len(columns[0][1]) if columns else 0
        arrays = [(prefix, one_chunk(c)) for prefix, c in columns]
        if not all(a.type == pa.int64() for _, a in arrays):
            return reference_encode.prefixed_ints(columns)
        specs = [
            (p.encode(), a.buffers()[0] if a.null_count else None, a.buffers()[1], a.offset)
            for p, a in arrays
        ]
        return _packed(pa.py_buffer(self.module.int_keys(specs, n)), n)

    def decode_batch(self, topic: Topic, payloads: Sequence[bytes], offsets: Offsets) -> Decoded:
        """As ``reference_decode.decode_batch``. The core parses the records it takes; those
        it declines go the reference way. Both parts are decoded with input positions for
        offsets, merged in input order, then mapped back to the source offsets."""
        if len(payloads) == 0:
            return empty(topic)
        payloads = list(payloads)
        names, _, kinds = _wire(topic)
        rows, declined, columns = self.module.parse(payloads, names, kinds, MAX_RECORD_BYTES)
        loose = loose_schema(topic)
        table = pa.table(
            [_array(f.type, rows, column) for f, column in zip(loose, columns, strict=True)],
            schema=loose,
        )
        if not declined:
            return validated(topic, table, payloads, offsets, [])
        taken = np.ones(len(payloads), dtype=bool)
        taken[declined] = False
        kept = np.flatnonzero(taken)
        fast = validate_table(topic, table, kept, lambda idx: [payloads[i] for i in kept[idx]])
        rest = reference_decode.decode_batch(
            topic, [payloads[i] for i in declined], np.asarray(declined, np.int64)
        )
        positions = np.concatenate([fast.offsets, rest.offsets])
        order = np.argsort(positions, kind="stable")
        merged = pa.concat_tables([fast.table, rest.table]).take(pa.array(order))
        dead = sorted(fast.dead + rest.dead, key=by_offset)
        return Decoded(
            merged,
            offsets[positions[order]],
            [DeadLetter(d.raw, int(offsets[d.offset]), d.reason) for d in dead],
        )

    def declines(self, topic: Topic, payloads: Sequence[bytes]) -> list[int]:
        """The positions of the records the core leaves to the reference decoder."""
        names, _, kinds = _wire(topic)
        _, declined, _ = self.module.parse(list(payloads), names, kinds, MAX_RECORD_BYTES)
        return list(declined)

    def encode_own(self, topic: Topic, table: pa.Table) -> bytes | None:
        """The core's own NDJSON for a non-empty batch, or None where it leaves the batch
        to the reference encoder."""
        encoded = self._encode(topic, table, packed=False)
        return encoded if isinstance(encoded, bytes) else None

    def _encode(self, topic: Topic, table: pa.Table, packed: bool) -> object:
        """The core's encoding (bytes, or packed rows: n + 1 int64 ends, then the bytes), or
        None where the reference must do it (another column type, or a value the core does
        not write as DuckDB does)."""
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
        return self.module.encode(keys, kinds, columns, table.num_rows, packed)


def load() -> tuple[NativeCodec | None, str | None]:
    """The codec on the built core, or None and why it could not be imported (a build
    without a C compiler leaves it out)."""
    try:
        import backbeat.events._jsonfast as core
    except ImportError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return NativeCodec(core), None


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


def _packed(buffer: pa.Buffer, n: int) -> pa.LargeBinaryArray:
    """The core's packed rows (n + 1 int64 ends, then the bytes) as an Arrow array, no copy."""
    head = (n + 1) * 8
    array: pa.LargeBinaryArray = pa.Array.from_buffers(
        pa.large_binary(), n, [None, buffer.slice(0, head), buffer.slice(head)]
    )
    return array


def _array(type_: pa.DataType, rows: int, column: tuple[Any, Any, Any, int]) -> pa.Array:
    """An Arrow array over the C core's buffers of one column (no copy)."""
    validity, values, data, nulls = column
    buffers = [None if validity is None else pa.py_buffer(validity), pa.py_buffer(values)]
    if data is not None:
        buffers.append(pa.py_buffer(data))
    return pa.Array.from_buffers(type_, rows, buffers, null_count=nulls)
