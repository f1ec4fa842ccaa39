"""The codec's two implementations, ``native`` (the C core) against ``python`` (the
reference), on the same input (Hypothesis).

Whatever the core takes must come out exactly as the reference makes it: the decoded table,
offsets and dead letters equal ``pyarrow.json`` + msgspec's, the encoded bytes equal
DuckDB's ``to_json``. What the core declines is the reference's by construction, so these
tests also check that the core takes the usual records (else they would prove nothing).
Without a built core they skip, or fail where it should have been built (a C compiler runs
here, or CI): see ``tests/support/c_build.py``.

Next: ``conftest.py`` (the ``native`` fixture), ``fuzz_codec.py`` (the same, on broken input).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backbeat.events import Topic, arrow_schema, codec
from backbeat.events.codec import python
from backbeat.events.codec.c_core import MODULE, NativeCodec
from tests.events.compare import assert_reasons_fit, assert_same
from tests.events.samples import record
from tests.support import c_build
from tests.support.eventlog import generate


def test_the_c_core_is_built_where_it_can_be() -> None:
    """Where a C compiler runs, or in CI, a build without the core is broken (it would
    silently run every batch the slow way): fail, saying how to build it. Elsewhere skip."""
    c_build.require(MODULE, codec.NATIVE_MISSING)
    assert codec.default is codec.native


# ------------------------------------------------------------------ decode

text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"])
    | st.sampled_from('"\\/\b\f\n\r\t\x00\x1f\x7f'),
    max_size=12,
)
scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | text
)
nested = st.lists(scalars, max_size=2) | st.dictionaries(text, scalars, max_size=2)


def _dumps(value: dict[str, Any], style: int) -> bytes:
    """The same object as several writers would send it."""
    if style == 0:  # compact, UTF-8
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    if style == 1:  # ASCII only: every other character as a \\u escape (pairs above U+FFFF)
        return json.dumps(value, ensure_ascii=True).encode()
    if style == 2:  # spaces and tabs around every token
        return json.dumps(value, ensure_ascii=False, separators=(" ,\t", " : ")).encode()
    return json.dumps(value, sort_keys=True).encode()  # keys out of contract order


@st.composite
def wire_records(draw: st.DrawFn, topic: Topic) -> bytes:
    rec: dict[str, Any] = record(topic, draw(st.integers(0, 50)))
    fields = list(rec)
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from([*fields, "extra", "zz"]))
        rec[name] = draw(scalars | nested) if name in ("extra", "zz") else draw(scalars)
    for name in draw(st.lists(st.sampled_from(fields), max_size=2)):
        rec.pop(name, None)
    raw = _dumps(rec, draw(st.integers(0, 3)))
    edit = draw(st.integers(0, 9))
    if edit == 0:  # truncated
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif edit == 1:  # a byte changed
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1 :]
    elif edit == 2:  # a key twice
        raw = raw[:-1] + b',"ts":1700000000000}'
    elif edit == 3:  # an escaped key
        raw = raw.replace(b'"city"', b'"\\u0063ity"')
    elif edit == 4:  # numbers the contract's integers do not take
        raw = raw.replace(b'"itemInSession":', b'"itemInSession":1.0,"x":', 1)
    elif edit == 5:  # an unknown key's number with a big exponent
        raw = raw[:-1] + b',"zz":' + draw(st.sampled_from([b"1e309", b"1.0e309", b"-1E+99"])) + b"}"
    elif edit == 6:  # something after the object
        raw += draw(st.sampled_from([b" x", b",", b"{}", b"\x00"]))
    elif edit == 7:  # the values as a CSV line (a misnamed export)
        raw = ",".join(str(v) for v in rec.values()).encode()
    return raw


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
@pytest.mark.parametrize("topic", [Topic.LISTEN, Topic.PAGE_VIEW, Topic.AUTH])
def test_decode_equals_the_python_path(
    native: NativeCodec, topic: Topic, data: st.DataObject
) -> None:
    payloads = data.draw(st.lists(wire_records(topic), min_size=1, max_size=12))
    offsets = np.arange(len(payloads), dtype=np.int64) * 5 + 100
    out = native.decode_batch(topic, payloads, offsets)
    assert_same(out, python.decode_batch(topic, payloads, offsets))
    assert_reasons_fit(out)


@settings(max_examples=300, deadline=None)
@given(st.lists(text.filter(len), min_size=1, max_size=6), st.integers(0, 3))
def test_strings_come_back_as_written(native: NativeCodec, songs: list[str], style: int) -> None:
    """Every escape and character, as each writer sends it, decodes to the text written."""
    recs = [record(Topic.LISTEN, i, song=song, city=song[::-1]) for i, song in enumerate(songs)]
    payloads = [_dumps(r, style) for r in recs]
    offsets = np.arange(len(payloads), dtype=np.int64)
    out = native.decode_batch(Topic.LISTEN, payloads, offsets)
    assert out.dead == []
    assert out.table.column("song").to_pylist() == songs
    assert out.table.column("city").to_pylist() == [song[::-1] for song in songs]
    assert_same(out, python.decode_batch(Topic.LISTEN, payloads, offsets))


def test_the_core_takes_what_writers_send(native: NativeCodec) -> None:
    """Records as json writes them (compact, ASCII escapes, spaces, sorted keys), orjson
    and msgspec: all taken."""
    recs = [
        record(Topic.LISTEN, i, song='Say "Hi" \\ \u00e9\U0001f600\t', rating=4.5) for i in range(8)
    ]
    payloads = [_dumps(r, i % 4) for i, r in enumerate(recs[:6])]
    payloads += [orjson.dumps(recs[6]), msgspec.json.encode(recs[7])]
    assert native.declines(Topic.LISTEN, payloads) == []
    out = native.decode_batch(Topic.LISTEN, payloads, np.arange(8, dtype=np.int64))
    assert out.dead == []
    assert out.table.column("song").to_pylist() == [recs[0]["song"]] * 8


def test_declined_records_keep_their_place_among_the_rest(native: NativeCodec) -> None:
    good = [orjson.dumps(record(Topic.AUTH, i)) for i in range(6)]
    escaped = good[1].replace(b'"city"', b'"\\u0063ity"')  # valid: the Python path takes it
    payloads = [good[0], escaped, b"nope", good[3], b"", good[5]]
    offsets = np.array([10, 11, 12, 13, 14, 15], dtype=np.int64)
    assert native.declines(Topic.AUTH, payloads) == [1, 2, 4]
    out = native.decode_batch(Topic.AUTH, payloads, offsets)
    assert out.offsets.tolist() == [10, 11, 13, 15]
    assert out.table.column("ts").to_pylist() == [record(Topic.AUTH, i)["ts"] for i in (0, 1, 3, 5)]
    assert [(d.offset, d.reason.split(":")[0]) for d in out.dead] == [
        (12, "not_json"),
        (14, "empty"),
    ]
    assert_same(out, python.decode_batch(Topic.AUTH, payloads, offsets))


@pytest.mark.parametrize("number", [b"1e309", b"-1E+999", b"1.0e309", b"1e-400", b"1e99"])
def test_unknown_keys_numbers_decide_as_the_reference_does(
    native: NativeCodec, number: bytes
) -> None:
    """pyarrow.json refuses some numbers with big exponents even under keys it ignores (1e309,
    not 1.0e309): the core declines every such number (three exponent digits or more)."""
    raw = orjson.dumps(record(Topic.AUTH, 1))[:-1] + b',"x":' + number + b"}"
    offsets = np.zeros(1, dtype=np.int64)
    assert_same(
        native.decode_batch(Topic.AUTH, [raw], offsets),
        python.decode_batch(Topic.AUTH, [raw], offsets),
    )
    assert native.declines(Topic.AUTH, [raw]) == ([] if number == b"1e99" else [0])


# ------------------------------------------------------------------ encode

finite = st.floats(allow_nan=False, allow_infinity=False)
short_decimals = st.builds(
    lambda m, k: round(m / 10**k, k), st.integers(-(10**9), 10**9), st.integers(0, 6)
)


@st.composite
def tables(draw: st.DrawFn, floats: st.SearchStrategy[float]) -> pa.Table:
    schema = arrow_schema(Topic.PAGE_VIEW)
    n = draw(st.integers(1, 6))
    columns = []
    for field in schema:
        values: st.SearchStrategy[Any] = {
            pa.string(): st.text(max_size=10),
            pa.int64(): st.integers(-(2**63), 2**63 - 1),
            pa.int32(): st.integers(-(2**31), 2**31 - 1),
            pa.float64(): floats,
            pa.bool_(): st.booleans(),
        }[field.type]
        if field.name != "ts":
            values = st.none() | values
        columns.append(pa.array(draw(st.lists(values, min_size=n, max_size=n)), field.type))
    table = pa.Table.from_arrays(columns, schema=schema.with_metadata(None))
    offset = draw(st.integers(0, n - 1))  # arrays that start inside their buffers
    return table.slice(offset)


@settings(max_examples=300, deadline=None)
@given(tables(finite | short_decimals))
def test_encode_equals_duckdb_where_the_core_writes(native: NativeCodec, table: pa.Table) -> None:
    ours = native.encode_table(Topic.PAGE_VIEW, table)
    assert ours == python.encode_table(Topic.PAGE_VIEW, table)
    rows = native.encode_array(Topic.PAGE_VIEW, table)
    assert rows.to_pylist() == ours.split(b"\n")[:-1]
    assert rows.equals(python.encode_array(Topic.PAGE_VIEW, table))


@settings(max_examples=200, deadline=None)
@given(tables(short_decimals))
def test_the_core_writes_short_decimals_itself(native: NativeCodec, table: pa.Table) -> None:
    """Doubles with few decimals (what the simulator and real catalogs hold) never need
    DuckDB, so the speed-up is real where it matters."""
    ours = native.encode_own(Topic.PAGE_VIEW, table)
    assert ours == python.encode_table(Topic.PAGE_VIEW, table)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.none() | st.integers(-(2**63), 2**63 - 1), st.integers(0, 2**62)),
        min_size=1,
        max_size=20,
    )
)
def test_record_keys_equal_the_arrow_path(
    native: NativeCodec, rows: list[tuple[int | None, int]]
) -> None:
    user = pa.chunked_array([pa.array([u for u, _ in rows], pa.int64())])
    session = pa.chunked_array([pa.array([s for _, s in rows], pa.int64())])
    columns = [("u", user), ("s", session)]
    keys = native.prefixed_ints(columns)
    assert keys.equals(python.prefixed_ints(columns))
    assert keys.to_pylist() == [
        f"u{u}".encode() if u is not None else f"s{s}".encode() for u, s in rows
    ]


def test_packed_rows_stay_whole_while_later_encodes_reuse_freed_buffers(
    native: NativeCodec,
) -> None:
    """Big packed outputs are recycled for later encodes once nothing refers to them (not
    before): arrays kept alive never change, whatever is encoded after them."""
    tables = [generate(sessions=400, minutes=120, seed=seed)[Topic.PAGE_VIEW] for seed in range(6)]
    expected = [native.encode_table(Topic.PAGE_VIEW, t).split(b"\n")[:-1] for t in tables]
    assert all(sum(map(len, rows)) > 1 << 20 for rows in expected)  # big enough to be spares
    kept = []
    for i, table in enumerate(tables):
        rows = native.encode_array(Topic.PAGE_VIEW, table)
        if i % 2 == 0:
            kept.append((rows, expected[i]))
        del rows  # the odd ones' buffers become spares for the next encode
    for rows, want in kept:
        assert rows.to_pylist() == want
