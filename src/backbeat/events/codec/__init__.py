"""The JSON codec: Arrow batches to NDJSON bytes and back, with bad records as data.

One interface, :class:`Codec`, and two implementations of it, each a module with one job:

- :data:`python`, the reference (``reference_encode.py``: DuckDB's ``to_json``;
  ``reference_decode.py``: ``pyarrow.json`` and msgspec). Its output *is* the contract's
  behaviour, and it runs everywhere.
- :data:`native`, the adapter to the optional C core (``c_core.py`` over ``../_c/``): the same
  results, faster; it takes only what it is sure of and hands the rest to the reference.
  None where the core was not built (no C compiler); :data:`NATIVE_MISSING` then says why.

:data:`default` is ``native`` when built, else ``python``; the module's functions
(:func:`encode_table`, :func:`encode_array`, :func:`prefixed_ints`, :func:`decode_batch`) run
on it, and tests compare the two explicitly. Decoding never raises on input: each bad
message becomes a :class:`DeadLetter` with its reason.

Next: ``results.py`` (what decoding returns), ``reference_decode.py``, ``c_core.py``;
``backbeat.engine`` calls :func:`decode_batch`, ``backbeat.transport.kafka.producer``
:func:`encode_array`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

import pyarrow as pa

from backbeat.events.codec import c_core, reference_decode, reference_encode
from backbeat.events.codec.reference_encode import encode_records, one_chunk
from backbeat.events.codec.results import DeadLetter, Decoded, Offsets, validate_table
from backbeat.events.schema import Topic

__all__ = [
    "NATIVE_MISSING",
    "Codec",
    "DeadLetter",
    "Decoded",
    "Offsets",
    "PythonCodec",
    "decode_batch",
    "default",
    "encode_array",
    "encode_records",
    "encode_table",
    "native",
    "one_chunk",
    "prefixed_ints",
    "python",
    "validate_table",
]


class Codec(Protocol):
    """The codec's four operations on a topic's batches; every implementation gives the
    reference's results (bytes, tables, offsets, dead letters and reasons alike)."""

    @property
    def name(self) -> str:
        """``python`` or ``native`` (test ids, logs)."""
        ...

    def encode_table(self, topic: Topic, table: pa.Table) -> bytes:
        """See :func:`encode_table`."""
        ...

    def encode_array(self, topic: Topic, table: pa.Table) -> pa.LargeBinaryArray:
        """See :func:`encode_array`."""
        ...

    def prefixed_ints(self, columns: Sequence[tuple[str, pa.ChunkedArray]]) -> pa.LargeBinaryArray:
        """See :func:`prefixed_ints`."""
        ...

    def decode_batch(self, topic: Topic, payloads: Sequence[bytes], offsets: Offsets) -> Decoded:
        """See :func:`decode_batch`."""
        ...


class PythonCodec:
    """The reference implementation: ``reference_encode.py`` and ``reference_decode.py``."""

    name: Final = "python"

    def encode_table(self, topic: Topic, table: pa.Table) -> bytes:
        return reference_encode.encode_table(topic, table)

    def encode_array(self, topic: Topic, table: pa.Table) -> pa.LargeBinaryArray:
        return reference_encode.encode_array(topic, table)

    def prefixed_ints(self, columns: Sequence[tuple[str, pa.ChunkedArray]]) -> pa.LargeBinaryArray:
        return reference_encode.prefixed_ints(columns)

    def decode_batch(self, topic: Topic, payloads: Sequence[bytes], offsets: Offsets) -> Decoded:
        return reference_decode.decode_batch(topic, payloads, offsets)


python: Final[Codec] = PythonCodec()
"""The reference codec: always there."""

_loaded, _why = c_core.load()
native: Final[c_core.NativeCodec | None] = _loaded
"""The C core's codec, or None where it was not built."""
NATIVE_MISSING: Final[str | None] = _why
"""Why :data:`native` is None (the import error), or None."""

default: Final[Codec] = python if native is None else native
"""What the module's functions run on: the C core when built, else the reference."""


def encode_table(topic: Topic, table: pa.Table) -> bytes:
    """Encode a batch as NDJSON: one object per row, keys in contract order, nulls omitted.

    Args:
        topic: whose fields (and order) to write; ``table`` has at least these columns.
        table: the rows, typically ``arrow_schema(topic)``.

    Returns:
        One line per row, each ending in a newline; ``b""`` for no rows.
    """
    return default.encode_table(topic, table)


def encode_array(topic: Topic, table: pa.Table) -> pa.LargeBinaryArray:
    """The rows of :func:`encode_table` as one JSON document each (no newline), in an Arrow
    array: with the C core, all rows in one buffer and no Python object per row."""
    return default.encode_array(topic, table)


def prefixed_ints(columns: Sequence[tuple[str, pa.ChunkedArray]]) -> pa.LargeBinaryArray:
    """Per row, the prefix and decimal value of the first int64 column not null there (``b""``
    if all are): message keys such as ``b"u123"`` (user 123) or ``b"s7"`` (session 7)."""
    return default.prefixed_ints(columns)


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
    return default.decode_batch(topic, payloads, offsets)
