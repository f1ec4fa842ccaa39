"""Event ids (``"<letter>-<tag>-<sessionId, 10 digits>-<itemInSession>"``) built with NumPy.

``pc.binary_join_element_wise`` over int-to-string casts costs ~100 ns a row, a quarter of
building a whole table. Here every id is assembled as integers instead. Its layout is fixed
but for the item's digits: the 8-byte prefix (topic letter and run tag, ``scope.py``) is one
little-endian ``uint64`` word, the session id zero-padded to 10 digits the next 10 bytes, then
a dash and the item without leading zeros. 4-digit groups come from a lookup table of ASCII
words; the words of each row are laid out 32 bytes a row and Arrow's ``string_view`` layout
points at them (16 bytes a row: the length, the first 4 bytes, the buffer and the row's
offset), which Arrow casts to a plain ``string`` in one pass. About 30-40 ns a row. Items of
9+ digits and session ids of 11+ (neither is reached in practice) take the Arrow join, which
gives the same strings.

Next: ``tables.py`` puts the ids in every topic's table.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

U64 = npt.NDArray[np.uint64]

PREFIX_BYTES: Final = 8
SESSION_DIGITS: Final = 10
_ASCII4: Final = np.frombuffer(b"".join(b"%04d" % i for i in range(10_000)), "<u4").astype(
    np.uint64
)  # i -> its 4 zero-padded digits as the bytes of a little-endian word
_POWERS: Final = tuple(10**k for k in range(1, 8))
_ITEM_LIMIT: Final = 10**8  # items up to 8 digits fit one uint64 word of ASCII
_SESSION_LIMIT: Final = 10**SESSION_DIGITS
_DASH: Final = np.uint64(ord("-"))
_EIGHT, _U16, _U24, _U32, _U40 = (np.uint64(k) for k in (8, 16, 24, 32, 40))
_FIXED: Final = PREFIX_BYTES + SESSION_DIGITS + 1  # bytes before the item's digits
_ROW: Final = 32  # bytes per id in the side buffer (4 words)


def event_ids(
    prefix: str, sid: npt.NDArray[np.integer], item: npt.NDArray[np.integer]
) -> pa.StringArray:
    """``f"{prefix}{sid:010d}-{item}"`` per row, as a ``pa.string()`` array.

    ``prefix`` must be 8 ASCII characters ending with a dash (``"l-k3m9q-"``); ``sid`` and
    ``item`` non-negative integers.

    Raises:
        ValueError: the prefix is not 8 ASCII characters ending with a dash.
    """
    raw = prefix.encode("ascii", errors="replace")
    if len(raw) != PREFIX_BYTES or not prefix.isascii() or not prefix.endswith("-"):
        raise ValueError(f"an event id prefix is 8 ASCII characters ending with '-': {prefix!r}")
    n = len(sid)
    sid64, item64 = sid.astype(np.int64, copy=False), item.astype(np.int64, copy=False)
    if not n or int(sid64.max()) >= _SESSION_LIMIT or int(item64.max()) >= _ITEM_LIMIT:
        return _joined(prefix, sid64, item64)
    n_item = _digit_counts(item64)
    words = np.empty((n, _ROW // 8), np.uint64)
    words[:, 0] = np.frombuffer(raw, "<u8")[0]
    high, low = np.divmod(sid64, 1_000_000)  # sid = high (4 digits) | middle (4) | last (2)
    middle, last = np.divmod(low, 100)
    words[:, 1] = _ASCII4[high] | (_ASCII4[middle] << _U32)
    i = _ascii(item64, (_EIGHT - n_item) * _EIGHT)
    words[:, 2] = (_ASCII4[last] >> _U16) | (_DASH << _U16) | (i << _U24)
    words[:, 3] = i >> _U40
    views = np.empty((n, 2), np.uint64)  # length, first 4 bytes; buffer 0, offset in it
    views[:, 0] = (n_item + np.uint64(_FIXED)) | (words[:, 0] << _U32)
    views[:, 1] = np.arange(n, dtype=np.uint64) * np.uint64(_ROW) << _U32
    buffers = [None, pa.py_buffer(views), pa.py_buffer(words)]
    return pa.Array.from_buffers(pa.string_view(), n, buffers).cast(pa.string())


def _ascii(x: npt.NDArray[np.int64], pad_bits: U64 | np.uint64) -> U64:
    """The decimal digits of ``x`` (< 10**8) as little-endian bytes, leading zeros dropped."""
    high = x // 10_000
    word = _ASCII4[high] | (_ASCII4[x - high * 10_000] << np.uint64(32))
    out: U64 = word >> pad_bits
    return out


def _digit_counts(x: npt.NDArray[np.int64]) -> U64:
    """Decimal digits per value (only the powers of ten inside ``x``'s range are compared)."""
    lo, hi = int(x.min()), int(x.max())
    counts = np.full(len(x), len(str(lo)), np.uint64)
    for power in _POWERS:
        if lo < power <= hi:
            counts += x >= power
    return counts


def _joined(prefix: str, sid: npt.NDArray[np.int64], item: npt.NDArray[np.int64]) -> pa.StringArray:
    sid_s = pc.utf8_lpad(pc.cast(pa.array(sid), pa.string()), SESSION_DIGITS, "0")
    item_s = pc.cast(pa.array(item), pa.string())
    out: pa.StringArray = pc.binary_join_element_wise(prefix[:-1], sid_s, item_s, prefix[-1])
    return out
