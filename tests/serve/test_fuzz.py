"""Schemathesis against the app's own OpenAPI schema: generated requests (valid and not) to
every documented operation; no answer may be a 5xx, and every answer must match the schema
(status code documented, body of the documented model, content type).

Each operation's strategy runs under Hypothesis inside one parametrized test (schemathesis'
fixture-based pytest integration does not run on pytest 9). ``/api/stream`` never ends, so it
is left to ``test_stream.py``. The store is wrapped in ``conftest.Recommending`` so that the
recommendation routes answer rather than 501.

Next: ``test_api.py`` (the routes checked against an oracle).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode
from schemathesis.schemas import APIOperation

from backbeat.serve.app import create_app
from backbeat.serve.hub import CommitHub
from tests.serve.conftest import Recommending, Served

# The documented operations, known without a store (the schema does not depend on the data).
_SCHEMA = schemathesis.openapi.from_asgi(
    "/openapi.json",
    create_app(None, CommitHub()),  # type: ignore[arg-type]
)
_CONSTRAINTS = {"enum", "pattern", "minimum", "maximum", "minLength", "maxLength"}


def _breakable(operation: dict[str, Any]) -> bool:
    """Does a parameter have a constraint that a request can break (a type, range, pattern)?"""
    for parameter in operation.get("parameters", []):
        for schema in [parameter["schema"], *parameter["schema"].get("anyOf", [])]:
            if _CONSTRAINTS & schema.keys() or schema.get("type") in {
                "integer",
                "number",
                "boolean",
            }:
                return True
    return False


_PATHS = _SCHEMA.raw_schema["paths"]
CASES = sorted(
    (f"{method.upper()} {path}", mode)
    for path, methods in _PATHS.items()
    if path != "/api/stream"
    for method, operation in methods.items()
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or _breakable(operation)
)


@pytest.fixture(scope="module")
def operations(served: Served) -> dict[str, APIOperation]:
    # The recommender's routes answer too (an in-test one): a 501 would count as a 5xx.
    app = create_app(Recommending(served.store_reader), served.hub)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    ops = (result.ok() for result in schema.get_all_operations())
    return {f"{op.method.upper()} {op.path}": op for op in ops}


def test_every_operation_is_fuzzed() -> None:
    positive = [name for name, mode in CASES if mode is GenerationMode.POSITIVE]
    negative = [name for name, mode in CASES if mode is GenerationMode.NEGATIVE]
    assert len(positive) >= 15, CASES
    assert "GET /api/top-songs" in negative, CASES


@pytest.mark.parametrize(("name", "mode"), CASES, ids=[f"{n} {m.value}" for n, m in CASES])
def test_no_server_errors_and_every_answer_matches_the_schema(
    name: str, mode: GenerationMode, operations: dict[str, APIOperation]
) -> None:
    """Positive cases follow the schema; negative ones break it (and must get a 4xx)."""

    @given(case=operations[name].as_strategy(mode))
    @settings(
        max_examples=50,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate()

    check()
