"""Broken records through the codec for a while: ``python -m tests.events.fuzz_codec 15``.

Valid records of every topic, mutated (bytes flipped, cut, spliced with escapes, surrogates,
huge numbers, stray quotes and braces, a CSV line of its values), decoded in batches by the C
core's codec and by the reference, which must agree exactly (and call whatever is not JSON
``not_json``); what decodes is encoded again by both (same bytes,
same record keys) and queued through the producer's C loop (``produce_each``), once as
encoded and once with its offsets scrambled, against the Python loop. Run by
``test_jsonfast_sanitized.py`` with both C cores built under AddressSanitizer and UBSan,
where any out-of-bounds read or undefined behaviour aborts the process.
"""

from __future__ import annotations

import json
import random
import sys
import time
from typing import Any

import numpy as np
import pyarrow as pa

from backbeat.events import Topic, codec
from backbeat.events.codec import python
from backbeat.events.codec.c_core import NativeCodec
from backbeat.transport.kafka.produce_loop import Column, _produce_each, column, produce_each
from tests.events.compare import assert_reasons_fit, assert_same
from tests.events.samples import record

SPLICES = [b"\\u", b"\\ud800", b"\\udc00x", b'"', b"\\", b"{", b"}", b",", b":", b"1e999",
           b"-", b"\xf0\x9f", b"\xc3", b"\xed\xa0\x80", b"null", b'"ts":', b"\t", b"\n"]  # fmt: skip


def mutate(rng: random.Random, raw: bytes) -> bytes:
    b = bytearray(raw)
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        if op < 0.3 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op < 0.5 and b:
            del b[rng.randrange(len(b)) : rng.randrange(len(b) + 1)]
        elif op < 0.7:
            at = rng.randrange(len(b) + 1)
            b[at:at] = rng.choice(SPLICES)
        elif op < 0.85:  # cut inside the last value, where a read past the end would go
            b = b[: max(0, len(b) - rng.randint(1, 14))]
        elif op < 0.95:
            b = b[: rng.randrange(len(b) + 1)]
        else:  # the record's values as a CSV line (a misnamed export): not JSON at all
            values = json.loads(raw).values()
            return ",".join(str(v) for v in values).encode()[: rng.randint(1, 400)]
    return bytes(b)


def _calls(loop: Any, specs: tuple[Column, Column, Column], rows: int) -> Any:
    """What ``loop`` hands to produce for every row, or the ValueError it refuses them with."""
    calls: list[tuple[bytes, ...]] = []

    def produce(topic: str, value: Any, key: Any, *rest: Any, headers: Any = None) -> None:
        header = (headers if headers is not None else rest[-1])[0][1]
        calls.append((bytes(value), bytes(key), bytes(header)))

    try:
        return loop(produce, "t", specs[0], specs[1], "eventId", specs[2], 0, rows), calls
    except ValueError as error:
        return str(error)


def _scrambled(rng: random.Random, spec: Column) -> Column:
    """``spec`` with some of its int64 offsets replaced by anything near the data's size."""
    offsets, data, _, first = spec
    ends = np.frombuffer(offsets, np.int64).copy()
    for _ in range(rng.randint(1, 3)):
        ends[rng.randrange(len(ends))] = rng.randint(-3, data.size + 3)
    return pa.py_buffer(ends), data, True, first


def _encode_both_ways(native: NativeCodec, topic: Topic, table: pa.Table) -> None:
    ours = native.encode_table(topic, table)
    assert ours == python.encode_table(topic, table)
    assert ours.count(b"\n") == table.num_rows
    assert native.encode_array(topic, table).equals(python.encode_array(topic, table))
    ids = [("u", table.column("userId")), ("s", table.column("sessionId"))]
    assert native.prefixed_ints(ids).equals(python.prefixed_ints(ids))


def _queue_both_ways(
    rng: random.Random, native: NativeCodec, topic: Topic, table: pa.Table
) -> None:
    values = native.encode_array(topic, table)
    keys = native.prefixed_ints([("u", table.column("userId")), ("s", table.column("sessionId"))])
    ids = table.column("eventId").combine_chunks()
    specs = (column(values), column(keys), column(ids))
    ours = _calls(produce_each, specs, len(values))
    assert ours == _calls(_produce_each, specs, len(values))
    expected = zip(values.to_pylist(), keys.to_pylist(), ids.to_pylist(), strict=True)
    assert ours == ((len(values), None), [(v, k, e.encode()) for v, k, e in expected])
    bad = (_scrambled(rng, specs[0]), specs[1], specs[2])
    assert _calls(produce_each, bad, len(values)) == _calls(_produce_each, bad, len(values))


def run(seconds: float, native: NativeCodec | None = None, seed: int = 7) -> int:
    """Batches decoded (and re-encoded) in ``seconds`` by ``native`` (default: the built
    core) and the reference; raises on any difference or broken invariant."""
    native = native or codec.native
    if native is None:
        raise SystemExit(f"the codec's C core is not built: {codec.NATIVE_MISSING}")
    rng = random.Random(seed)
    # Over 512 bytes each, so every payload is its own malloc (a sanitizer sees its end;
    # smaller bytes objects share pymalloc's pools).
    agent = "Mozilla/5.0 (X11; Linux x86_64) " * 12
    base = [
        json.dumps(record(t, i, userAgent=agent), separators=sep).encode()
        for t in Topic
        for i in range(5)
        for sep in ((",", ":"), (", ", ": "))
    ]
    deadline = time.monotonic() + seconds
    batches = 0
    while time.monotonic() < deadline:
        topic = rng.choice(list(Topic))
        payloads = [
            mutate(rng, rng.choice(base)) if rng.random() < 0.7 else rng.choice(base)
            for _ in range(rng.randint(1, 30))
        ]
        offsets = np.arange(len(payloads), dtype=np.int64)
        out = native.decode_batch(topic, payloads, offsets)
        assert_same(out, python.decode_batch(topic, payloads, offsets))
        assert out.table.num_rows + len(out.dead) == len(payloads)
        assert_reasons_fit(out)
        if out.table.num_rows:
            start = rng.randrange(out.table.num_rows)
            _encode_both_ways(native, topic, out.table.slice(start))
            _queue_both_ways(rng, native, topic, out.table.slice(start))
        batches += 1
    return batches


if __name__ == "__main__":
    print(f"fuzz batches: {run(float(sys.argv[1]) if len(sys.argv) > 1 else 15.0)}")
