"""Codec: round trips, classification of bad input, and 'arbitrary bytes never raise'.

Each test runs on both implementations (the ``codec`` fixture: the reference, then the C
core; see ``conftest.py``), so the contract holds for each, not only for the default.
"""

from __future__ import annotations

import msgspec
import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backbeat.events import Topic, arrow_schema, encode_records
from backbeat.events.codec import Codec, Decoded
from tests.events.compare import NOT_JSON_CODES, assert_reasons_fit, is_json
from tests.events.samples import record


def _decode(codec: Codec, topic: Topic, payloads: list[bytes]) -> Decoded:
    return codec.decode_batch(topic, payloads, np.arange(len(payloads), dtype=np.int64))


@pytest.mark.parametrize("topic", list(Topic))
def test_valid_records_decode_to_the_topic_schema(codec: Codec, topic: Topic) -> None:
    raw = encode_records([record(topic, i) for i in range(40)])
    out = _decode(codec, topic, raw)
    assert out.dead == []
    assert out.table.schema == arrow_schema(topic)
    assert out.table.num_rows == 40
    assert out.offsets.tolist() == list(range(40))


@pytest.mark.parametrize("topic", list(Topic))
def test_encode_decode_round_trip_is_identity(codec: Codec, topic: Topic) -> None:
    table = _decode(codec, topic, encode_records([record(topic, i) for i in range(25)])).table
    again = _decode(codec, topic, codec.encode_table(topic, table).splitlines()).table
    assert again.equals(table)


def test_guests_carry_no_user_fields_and_are_valid(codec: Codec) -> None:
    guest = record(Topic.PAGE_VIEW, 1, auth="Guest")
    for key in ("userId", "firstName", "lastName", "gender", "registration"):
        guest.pop(key)
    out = _decode(codec, Topic.PAGE_VIEW, encode_records([guest]))
    assert out.dead == []
    line = codec.encode_table(Topic.PAGE_VIEW, out.table)
    assert b"userId" not in line
    assert b"gender" not in line
    assert line.endswith(b"\n")


BAD = {
    "not_json": b"not json",
    "truncated": orjson.dumps(record(Topic.LISTEN, 1))[:-7],
    "empty": b"",
    "array": b"[1, 2]",
    "wrong_type": orjson.dumps(record(Topic.LISTEN, 1, ts="yesterday")),
    "year_3000": orjson.dumps(record(Topic.LISTEN, 1, ts=32_503_680_000_000)),
    "huge": orjson.dumps(record(Topic.LISTEN, 1, artist="x" * 1_000_000)),
    "long_string": orjson.dumps(record(Topic.LISTEN, 1, artist="x" * 5000)),
    "missing": orjson.dumps({k: v for k, v in record(Topic.LISTEN, 1).items() if k != "artist"}),
    "bad_enum": orjson.dumps(record(Topic.LISTEN, 1, level="gold")),
    "inconsistent": orjson.dumps(record(Topic.LISTEN, 0, completed=False)),
    "skipped_and_completed": orjson.dumps(record(Topic.LISTEN, 0, skipped=True)),
    "rating_range": orjson.dumps(record(Topic.LISTEN, 0, rating=9.0)),
    "int32_overflow": orjson.dumps(record(Topic.LISTEN, 1, itemInSession=2**40)),
    "zip_letters": orjson.dumps(record(Topic.LISTEN, 1, zip="AB123")),
    "logged_in_no_user": orjson.dumps(
        {k: v for k, v in record(Topic.LISTEN, 1).items() if k != "userId"}
    ),
    "bad_utf8": orjson.dumps(record(Topic.LISTEN, 1)).replace(b"Tampa", b"Ta\xff\xfepa"),
    # A Kaggle spotify_history.csv line: a number first, so a typed parser sees an int.
    "csv_line": b"6potE1lWMqhk4OxmfsoGDk,2023-01-01 12:00:00,web player,3185,Sunday,Queen",
    "number_then_text": b"5 x",
    "object_then_text": orjson.dumps(record(Topic.LISTEN, 1, ts="yesterday")) + b" x",
    "number": b"5",
}
EXPECTED_CODE = {
    "not_json": "not_json", "truncated": "not_json", "empty": "empty", "array": "wrong_type",
    "wrong_type": "wrong_type", "year_3000": "out_of_range", "huge": "too_large",
    "long_string": "bad_value", "missing": "missing_field", "bad_enum": "bad_value",
    "inconsistent": "inconsistent", "skipped_and_completed": "inconsistent",
    "rating_range": "out_of_range", "int32_overflow": "out_of_range", "zip_letters": "bad_value",
    "logged_in_no_user": "missing_field", "bad_utf8": "not_json", "csv_line": "not_json",
    "number_then_text": "not_json", "object_then_text": "not_json", "number": "wrong_type",
}  # fmt: skip


def test_each_kind_of_bad_record_is_classified_and_the_rest_flows(codec: Codec) -> None:
    good = encode_records([record(Topic.LISTEN, i) for i in range(10)])
    payloads = good[:5] + list(BAD.values()) + good[5:]
    out = _decode(codec, Topic.LISTEN, payloads)
    assert out.table.num_rows == 10
    reasons = {d.offset: d.reason for d in out.dead}
    for i, name in enumerate(BAD):
        code = reasons[5 + i].split(":")[0]
        assert code == EXPECTED_CODE[name], (name, reasons[5 + i])
    assert sorted(reasons) == list(range(5, 5 + len(BAD)))
    assert [d.raw for d in out.dead] == list(BAD.values())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=8))
def test_arbitrary_bytes_never_raise_and_are_classified(
    codec: Codec, payloads: list[bytes]
) -> None:
    out = _decode(codec, Topic.AUTH, payloads)
    assert out.table.num_rows + len(out.dead) == len(payloads)
    assert all(d.reason.split(":")[0] for d in out.dead)
    assert_reasons_fit(out)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(st.characters(codec="utf-8"), max_size=12), min_size=2, max_size=6),
    st.sampled_from([",", ";", "\t"]),
)
def test_a_delimited_line_is_not_json(codec: Codec, cells: list[str], sep: str) -> None:
    """CSV and TSV lines (what a misnamed export holds) are ``not_json`` whatever their first
    cell, unless the line happens to be one JSON document."""
    raw = sep.join(cells).encode()
    out = _decode(codec, Topic.LISTEN, [raw])
    assert out.table.num_rows == 0
    assert_reasons_fit(out)
    if not is_json(raw):
        assert out.dead[0].reason.startswith(NOT_JSON_CODES), out.dead[0].reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(list(record(Topic.AUTH))), json_values, max_size=6))
def test_records_with_arbitrary_field_values_never_raise(
    codec: Codec, overrides: dict[str, object]
) -> None:
    rec = record(Topic.AUTH, 3) | overrides
    out = _decode(codec, Topic.AUTH, [msgspec.json.encode(rec)])
    assert out.table.num_rows + len(out.dead) == 1


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.integers(0, 10_000),
    st.floats(0, 1),
    st.one_of(st.none(), st.sampled_from([1.0, 1.5, 2.0, 3.5, 5.0])),
    st.booleans(),
)
def test_listen_round_trip_property(
    codec: Codec, session: int, item: int, pct: float, rating: float | None, skip: bool
) -> None:
    pct = round(pct, 4)
    completed = pct >= 0.99
    rec = record(
        Topic.LISTEN, 1, sessionId=session, itemInSession=item, listenPct=pct,
        completed=completed, skipped=skip and not completed, rating=rating,
        eventId=f"l-{session}-{item}",
    )  # fmt: skip
    out = _decode(codec, Topic.LISTEN, encode_records([rec]))
    assert out.dead == []
    row = out.table.to_pylist()[0]
    assert {k: v for k, v in row.items() if v is not None} == {
        k: v for k, v in rec.items() if v is not None
    }
    back = _decode(
        codec, Topic.LISTEN, codec.encode_table(Topic.LISTEN, out.table).splitlines()
    ).table
    assert back.equals(out.table)


def test_empty_batch(codec: Codec) -> None:
    out = _decode(codec, Topic.LISTEN, [])
    assert out.table.num_rows == 0
    assert out.dead == []
    assert isinstance(out.table, pa.Table)


@pytest.mark.parametrize("shapes", [3, 40])
def test_encoding_omits_null_keys_whatever_the_null_shapes(codec: Codec, shapes: int) -> None:
    """Rows are encoded per null shape (few shapes) or with nulls cut out after (many):
    either way every line is the row's non-null fields, in contract order."""
    rng = np.random.default_rng(shapes)
    rows = []
    optional = ["userId", "firstName", "lastName", "gender", "registration", "rating"]
    for i in range(200):
        row = record(Topic.LISTEN)
        row["eventId"] = f"e-{i}"
        pattern = int(rng.integers(shapes))
        for bit, name in enumerate(optional):
            if pattern >> bit & 1:
                row[name] = None
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=arrow_schema(Topic.LISTEN))
    lines = codec.encode_table(Topic.LISTEN, table).split(b"\n")[:-1]
    order = arrow_schema(Topic.LISTEN).names
    assert [list(orjson.loads(line)) for line in lines] == [
        [k for k in order if row.get(k) is not None] for row in rows
    ]
    assert [orjson.loads(line) for line in lines] == [
        {k: v for k, v in row.items() if v is not None} for row in rows
    ]
