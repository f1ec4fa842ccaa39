"""Exact comparison of two codec implementations' results (``test_jsonfast.py``,
``fuzz_codec.py``): the C core must give the reference's, to the byte and the reason.

Next: ``backbeat.events.codec`` (``python`` and ``native``).
"""

from __future__ import annotations

from backbeat.events.codec import Decoded


def assert_same(a: Decoded, b: Decoded) -> None:
    """The same table (schema, values, chunk-independent), offsets and dead letters."""
    assert a.table.schema == b.table.schema
    assert a.table.to_pylist() == b.table.to_pylist()
    assert a.table.equals(b.table)
    assert a.offsets.tolist() == b.offsets.tolist()
    assert a.dead == b.dead
