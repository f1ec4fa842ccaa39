"""A private broker for the Kafka tests that pause theirs (the session's broker and the
``kafka`` / ``topics`` fixtures live in ``tests/conftest.py``).

Tests use ``assign()`` (no consumer group join, which takes tansu ~20 s) unless they test
groups. ``own_broker`` is a private tansu for a test that pauses it with SIGSTOP.

Next: ``test_roundtrip.py`` (exactness), ``test_million.py`` (1 M events, kill -9),
``test_pause.py``, ``test_dead_letters.py``, ``test_admin.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXTERNAL_KAFKA
from tests.support.kafka import Broker, tansu_broker


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A tansu broker for this test alone (to pause it without disturbing the others)."""
    pytest.importorskip("confluent_kafka", reason="the kafka extra (confluent-kafka) is missing")
    if EXTERNAL_KAFKA:
        pytest.skip("BACKBEAT_TEST_KAFKA points at an external broker, which we cannot SIGSTOP")
    with tansu_broker(tmp_path / "broker") as broker:
        yield broker
