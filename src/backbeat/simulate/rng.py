"""Counter-based random numbers: the i-th draw of user u depends only on (seed, u, i).

A stateful generator would tie every number to the order in which users happen to be
processed, so output would change with the batch size. Here each user owns a 64-bit key and an
event counter; ``uniforms`` hashes (key, counter, slot) with SplitMix64's finalizer, fully
vectorized. ``uniform_rows`` returns the same numbers slot-major (one contiguous row per slot),
which is what the hot loops want. The same user makes the same choices however the timeline is cut into batches.

Next: ``engine.py`` (the only consumer besides ``users.py``).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

_GOLDEN: Final = np.uint64(0x9E3779B97F4A7C15)
_M1: Final = np.uint64(0xBF58476D1CE4E5B9)
_M2: Final = np.uint64(0x94D049BB133111EB)
_CTR: Final = np.uint64(0xD1B54A32D192ED03)
_S30: Final = np.uint64(30)
_S27: Final = np.uint64(27)
_S31: Final = np.uint64(31)
_S32: Final = np.uint64(32)
_LOW32: Final = np.uint64(0xFFFFFFFF)
_TO_UNIT: Final = 1.0 / float(1 << 32)


def mix(x: U64) -> U64:
    """SplitMix64 finalizer (a bijection on uint64 with good avalanche)."""
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


def _mix_owned(x: U64) -> U64:
    """``mix`` that reuses ``x`` (a temporary the caller owns) instead of allocating."""
    x ^= x >> _S30
    x *= _M1
    x ^= x >> _S27
    x *= _M2
    x ^= x >> _S31
    return x


def stream_key(seed: int, stream: int) -> int:
    """A 64-bit key for an independent stream (e.g. users, tracks) of one seed."""
    x = np.array([(seed * 0x2545F4914F6CDD1D + stream * 0x9E3779B97F4A7C15) % 2**64], np.uint64)
    return int(mix(mix(x))[0])


def keys_for(seed: int, stream: int, ids: npt.NDArray[np.int64]) -> U64:
    """One key per id (e.g. per user index) in a stream."""
    base = np.uint64(stream_key(seed, stream))
    return mix(ids.astype(np.uint64) * _GOLDEN + base)


def uniform_rows(keys: U64, counters: U64, stop: int, start: int = 0) -> F64:
    """Slots ``start..stop-1`` of ``uniforms(keys, counters, stop)``, transposed: ``(k, n)``.

    Row ``j`` is slot ``start + j``, contiguous; ``start`` must be even (slots come in pairs).
    Skipping the first pairs costs nothing: each pair is its own hash of the same base.
    """
    assert start % 2 == 0, "start must be even"
    base = _mix_owned(keys ^ (counters * _CTR))
    first, last = start // 2 + 1, (stop + 1) // 2
    steps = np.arange(first, last + 1, dtype=np.uint64)[:, None] * _GOLDEN
    grid = _mix_owned(base[None, :] + steps)
    rows = np.empty((2 * len(steps), len(keys)), np.float64)
    rows[0::2] = grid >> _S32
    rows[1::2] = grid & _LOW32
    rows *= _TO_UNIT
    return rows[: stop - start]


def uniforms(keys: U64, counters: U64, slots: int) -> F64:
    """``(len(keys), slots)`` uniforms in [0, 1) for draw ``counters`` of each key.

    Each 64-bit hash yields two 32-bit uniforms (resolution 2**-32, plenty for sampling).
    """
    base = mix(keys ^ (counters * _CTR))
    half = (slots + 1) // 2
    grid = mix(base[:, None] + np.arange(1, half + 1, dtype=np.uint64)[None, :] * _GOLDEN)
    pairs = np.empty((len(keys), 2 * half), np.float64)
    pairs[:, 0::2] = grid >> _S32
    pairs[:, 1::2] = grid & _LOW32
    pairs *= _TO_UNIT
    return pairs[:, :slots]
