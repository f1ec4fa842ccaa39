"""Topics that do not exist yet, as a user meets them on a fresh broker: ``produce`` creates
the topics it writes (even one it has no event for yet).

Next: ``backbeat.wiring.produce``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backbeat.events.schema import Topic
from backbeat.transport.kafka.admin import list_topics
from backbeat.transport.kafka.settings import KafkaSettings
from tests.support.kafka import clean_env, committed, stream_command
from tests.support.kafka_log import read_topics

pytestmark = pytest.mark.integration


def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "backbeat", "--json", *args],
        capture_output=True, env=clean_env(), timeout=300, check=False,
    )  # fmt: skip


def _kafka_flags(kafka: KafkaSettings) -> tuple[str, ...]:
    return ("--bootstrap-servers", kafka.bootstrap_servers, "--topic-prefix", kafka.topic_prefix)


def test_produce_then_stream_on_a_fresh_broker(kafka: KafkaSettings, tmp_path: Path) -> None:
    """The issue's report: 100 events hold no status change, yet every topic ``produce``
    writes exists afterwards, so ``stream`` reads them all (it stopped with "no such topic")."""
    done = _run(
        "produce", *_kafka_flags(kafka), "--users", "2000", "--seed", "1", "--total", "100",
        "--start", "2026-01-05T12:00:00Z", "--end", "2026-01-05T12:10:00Z",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert json.loads(done.stdout)["delivered"] == 100
    names = [kafka.topic(t.value) for t in Topic]
    assert set(names) <= set(list_topics(kafka))
    status = kafka.topic(Topic.STATUS_CHANGE.value)
    assert read_topics(kafka.bootstrap_servers, [status]) == []  # the case of the report
    store = tmp_path / "store"
    done = subprocess.run(
        stream_command(kafka, store, "--until-end"), capture_output=True, env=clean_env(),
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert json.loads(done.stdout.splitlines()[-1])["events_in"] == 100
    assert b"exist" not in done.stderr  # nothing missing, nothing awaited
    assert committed(store) == (100, 100)
