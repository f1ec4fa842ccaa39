"""Streamify's Spark schemas against our JSON, by Spark's own JSON rules (no JVM needed).

Spark's JSON reader (``spark.read.schema(s).json`` and ``from_json``) matches keys by exact
spelling and never coerces a JSON string into a number: a key spelled differently, or a string
where the schema says int, becomes NULL. This test applies exactly those rules to what the
simulator and the codec write, field by field. It pins two known, documented gaps:

- ``zip``: our contract keeps it a string (leading zeros matter: "03301"); Streamify declares
  ``int``, so Spark yields NULL for it. (Checked against PySpark 4.0 by hand: it does.)
- ``sessionid`` (lower-case, listen and auth schemas): eventsim itself writes ``sessionId``, so
  Spark yields NULL there for eventsim's output too. Streamify's page-view schema spells it
  ``sessionId`` and gets the value.
Every other field we have a value for must parse to a non-null value of the declared type.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from backbeat.events import Topic, encode_table
from backbeat.simulate.simulator import Simulator, SimulatorSettings

COMMON = (
    "ts long, sessionid int, auth string, level string, itemInSession int, city string, "
    "zip int, state string, userAgent string, lon double, lat double, userId long, "
    "lastName string, firstName string, gender string, registration long"
)
STREAMIFY = {
    Topic.LISTEN: "artist string, song string, duration double, " + COMMON,
    Topic.PAGE_VIEW: "page string, method string, status int, "
    + COMMON.replace("sessionid", "sessionId"),
    Topic.AUTH: "success boolean, " + COMMON,
}
KNOWN_GAPS = {"zip", "sessionid"}
INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def spark_value(value: object, spark_type: str) -> object:
    """What Spark's JSON parser makes of one JSON value for a declared type (None = NULL)."""
    if value is None:
        return None
    if spark_type in INT_RANGE:
        lo, hi = INT_RANGE[spark_type]
        ok = isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
        return value if ok else None
    if spark_type == "double":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok else None  # type: ignore[arg-type]
    if spark_type == "boolean":
        return value if isinstance(value, bool) else None
    return value if isinstance(value, str) else None


@pytest.fixture(scope="module")
def lines() -> dict[Topic, list[dict[str, object]]]:
    settings = SimulatorSettings(
        users=3000, seed=5, start=datetime(2026, 1, 5, 12, tzinfo=UTC),
        end=datetime(2026, 1, 5, 16, tzinfo=UTC),
    )  # fmt: skip
    tables = Simulator(settings).run()
    return {
        t: [orjson.loads(x) for x in encode_table(t, tables[t]).splitlines()] for t in STREAMIFY
    }


@pytest.mark.parametrize("topic", list(STREAMIFY))
def test_streamify_schema_parses_every_value_we_send(
    topic: Topic, lines: dict[Topic, list[dict[str, object]]]
) -> None:
    fields = [f.strip().split(" ") for f in STREAMIFY[topic].split(",")]
    assert len(lines[topic]) > 20
    for record in lines[topic]:
        for name, spark_type in fields:
            if name in KNOWN_GAPS:
                continue
            sent = record.get(name)
            parsed = spark_value(sent, spark_type)
            assert (parsed is None) == (sent is None), (topic, name, sent, spark_type)


@pytest.mark.parametrize("topic", list(STREAMIFY))
def test_the_known_gaps_are_exactly_zip_and_lowercase_sessionid(
    topic: Topic, lines: dict[Topic, list[dict[str, object]]]
) -> None:
    record = lines[topic][0]
    assert isinstance(record["zip"], str)
    assert record["zip"].isdigit()
    assert len(record["zip"]) == 5
    assert spark_value(record["zip"], "int") is None
    assert "sessionid" not in record
    assert isinstance(record["sessionId"], int)
    assert record["sessionId"] < 2**31  # fits Streamify's int where the spelling matches


def test_guests_have_no_user_fields_so_nulls_there_are_true_nulls(
    lines: dict[Topic, list[dict[str, object]]],
) -> None:
    guests = [r for r in lines[Topic.PAGE_VIEW] if r["auth"] in ("Guest", "Logged Out")]
    assert guests
    assert all("userId" not in r and "firstName" not in r for r in guests)
