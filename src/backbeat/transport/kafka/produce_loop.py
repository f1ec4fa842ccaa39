"""The producer's per-record loop: Arrow binary columns in, one ``Producer.produce`` call a row.

:func:`produce_each` calls confluent-kafka's public ``Producer.produce`` once per record,
with value, key and one header taken from the buffers of Arrow binary or string arrays
(:data:`Column`, made by :func:`column`). It is the C loop of the extension ``_produce``
(``_c/produce.c``: the same positional call without the interpreter's work per record) when
the package was built with a C compiler, else :func:`_produce_each`, the same loop in Python,
which also states the contract. Both stop at the first exception and hand it back with the
row it stopped at, and refuse rows that lie outside their buffers before any call.

Next: ``producer.py`` (the caller), ``_c/produce.c``.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import numpy as np
import pyarrow as pa

Column = tuple[pa.Buffer, pa.Buffer, bool, int]
"""A binary column as the produce loop takes it: offsets, data, int64 offsets?, first row."""
Produced = tuple[int, BaseException | None]
"""(rows done, the exception that stopped the loop or None)."""


def column(array: pa.Array) -> Column:
    """The buffers of an Arrow binary or string array, as ``produce_each`` takes them."""
    _, offsets, data = array.buffers()
    wide = array.type in (pa.large_binary(), pa.large_string())
    return offsets, data if data is not None else pa.py_buffer(b""), wide, array.offset


def _rows(spec: Column, start: int, stop: int) -> list[bytes]:
    """Rows [start, stop) of a column as bytes; ValueError if they lie outside its buffers."""
    offsets, data, wide, first = spec
    ends = np.frombuffer(offsets, np.int64 if wide else np.int32)
    if first < 0 or len(ends) < first + stop + 1:
        raise ValueError("produce_each: offsets buffer too short")
    ends = ends[first + start : first + stop + 1].tolist()
    rows = list(pairwise(ends))
    for i, (lo, hi) in enumerate(rows, start):
        if lo < 0 or hi < lo or hi > data.size:
            raise ValueError(f"produce_each: row {i} lies outside its data")
    view = memoryview(data)
    return [bytes(view[lo:hi]) for lo, hi in rows]


def _produce_each(
    produce: Callable[..., None],
    topic: str,
    values: Column,
    keys: Column,
    header: str,
    header_values: Column,
    start: int,
    stop: int,
) -> Produced:
    """``produce(topic, values[i], keys[i], headers=[(header, header_values[i])])`` for i in
    [start, stop), each value as bytes.

    Returns:
        (i, exception) for the first record whose call raised (the ones before it were
        queued), else (stop, None). ``BufferError`` is librdkafka's full local queue.

    Raises:
        ValueError: ``start``/``stop`` out of order, or rows outside their buffers (before
            any call).
    """
    if start < 0 or stop < start:
        raise ValueError("produce_each: need 0 <= start <= stop")
    rows = zip(*(_rows(c, start, stop) for c in (values, keys, header_values)), strict=True)
    for i, (value, key, header_value) in enumerate(rows, start):
        try:
            produce(topic, value, key, headers=[(header, header_value)])
        except BaseException as error:  # handed back: the caller counts, then re-raises
            return i, error
    return stop, None


try:
    from backbeat.transport.kafka._produce import produce_each as produce_each  # re-exported
except ImportError:  # built without a C compiler
    produce_each = _produce_each
