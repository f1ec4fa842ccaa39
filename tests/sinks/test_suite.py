"""One test suite over every registered store and result sink: the same batches, a replayed
one, the same results, no doubles.

Each case feeds the batches of ``support/sink_batches.py`` through the engine's side of the
contract, with every crash a sink must survive (killed after a batch's write, between the
store's commit and the write, before the commit) and a stale replay the store must refuse,
then reads back what the backend holds, with its own reader or a plain client, and compares
it with one aggregation over all the batches' events. Exactly-once backends must hold each
row once; at-least-once ones every record, repeats only of the batch a crash replayed, each
carrying its batch id. A backend registered without a case here fails the suite.

Next: ``support/sink_batches.py`` (batches, driver, expected results).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from backbeat.analytics.metrics import WINDOW_MS
from backbeat.events.schema import Topic
from backbeat.sinks.base import ResultSink, SinkSpec
from backbeat.sinks.queries import DeadLetterRecords
from backbeat.sinks.registry import SINKS, STORES, open_sinks, open_store
from tests.support.sink_batches import Driver, Fed, expected, make_batches
from tests.support.stores import all_metrics, ask

Build = Callable[[Path, Any], Callable[[], ResultSink] | None]
Check = Callable[[Path, Any, list[Fed]], list[str]]
REPLAYED = 4
"""Batch 4 is written and then the process is killed; batch 5 is committed and the process
killed before its write; batch 6 is fed and the process killed before its commit."""
MAY_REPEAT = {REPLAYED, REPLAYED + 1}
"""What an at-least-once sink may send twice: the last batch committed before each kill (4,
and 5 at the kill before batch 6's commit); never a batch the sink finished in a run that
went on."""


@dataclass(frozen=True)
class Case:
    build: Build
    check: Check
    fixture: str | None = None
    """The fixture whose value ``build`` and ``check`` get (a real server: an integration
    test); None: they get None."""
    in_server: bool = False
    """The primary store is the fixture's URL (a store backend on a server), not a folder."""


def _location(path: Path, case: Case, resource: Any) -> str:
    return str(resource) if case.in_server else str(path / "store")


def _store_only(path: Path, resource: Any) -> None:
    return None


def _check_store(path: Path, resource: Any, fed: list[Fed]) -> list[str]:
    store = str(resource) if isinstance(resource, str) else path / "store"
    problems = []
    got, want = all_metrics(store), expected(fed)
    problems += [f"{name} differs" for name in want if got[name] != want[name]]
    dead = ask(store, DeadLetterRecords(after=0, upto=2**40))
    keys = Counter((r["partition"], r["offset"]) for r in dead)
    problems += [f"dead letter {k} stored {n} times" for k, n in keys.items() if n > 1]
    if len(keys) != sum(f.batch.dead_letters.num_rows for f in fed):
        problems.append(f"{len(keys)} distinct dead letters stored")
    return problems


def _csv_sink(path: Path, resource: Any) -> Callable[[], ResultSink]:
    return lambda: open_sinks([SinkSpec("csv", str(path / "results.csv"))])[0]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_csv(path: Path, resource: Any, fed: list[Fed]) -> list[str]:
    rows = list(csv.reader(io.StringIO((path / "results.csv").read_text(), newline="")))
    problems = [] if rows[0] == ["window_start", "window_end", "genre", "count"] else ["header"]
    watermark = fed[-1].batch.watermarks[Topic.LISTEN.value]
    assert watermark is not None
    until = watermark // WINDOW_MS * WINDOW_MS
    want = {
        (_iso(r["window_start"]), _iso(r["window_start"] + WINDOW_MS), r["genre"]): str(r["plays"])
        for r in expected(fed)["genre_minute"]
        if r["window_start"] < until
    }
    seen = Counter((r[0], r[1], r[2]) for r in rows[1:])
    problems += [f"{k} written {n} times" for k, n in seen.items() if n > 1]
    got = {(r[0], r[1], r[2]): r[3] for r in rows[1:]}
    if got != want:
        problems.append(
            f"{len(got)} rows, {len(want)} expected; differ e.g. {set(got) ^ set(want)}"
        )
    return problems


def _dlq_sink(path: Path, kafka: Any) -> Callable[[], ResultSink]:
    return lambda: open_sinks([SinkSpec("kafka-dlq", kafka=kafka)])[0]


def _check_dlq(path: Path, kafka: Any, fed: list[Fed]) -> list[str]:
    from tests.support.kafka_log import read_topics

    names = [kafka.topic(f"{t}.dlq") for t in ("listen_events", "page_view_events")]
    records = read_topics(kafka.bootstrap_servers, names)
    want = {
        (r["partition"], r["offset"]): r["raw"]
        for f in fed
        for r in f.batch.dead_letters.to_pylist()
    }
    got = Counter(
        (f"kafka:{r.headers['source.topic']}:{r.headers['source.partition']}",
         int(r.headers["source.offset"]))
        for r in records
    )  # fmt: skip
    problems = []
    if set(got) != set(want):
        problems.append(f"missing {set(want) - set(got)}, unexpected {set(got) - set(want)}")
    repeated = {int(r.headers["batch.id"]) for r in records if got[_source(r)] > 1}
    if not repeated <= MAY_REPEAT:
        problems.append(f"records of batches {sorted(repeated)} repeated ({MAY_REPEAT} may)")
    if any(r.value != want.get(_source(r)) for r in records):
        problems.append("a record's bytes differ from the dead letter's")
    return problems


def _source(record: Any) -> tuple[str, int]:
    h = record.headers
    return f"kafka:{h['source.topic']}:{h['source.partition']}", int(h["source.offset"])


def _mongo_sink(path: Path, url: Any) -> Callable[[], ResultSink]:
    return lambda: open_sinks([SinkSpec("mongo", options={"url": url})])[0]


def _check_mongo(path: Path, url: Any, fed: list[Fed]) -> list[str]:
    from pymongo import MongoClient

    want = expected(fed)
    problems = []
    client: MongoClient[dict[str, Any]] = MongoClient(url)
    try:
        db = client.get_default_database()
        for name, keys in MONGO_KEYS.items():
            docs = list(db[name].find())
            batches = Counter(b for d in docs for b in set(d["batches"]))
            repeated = [d["_id"] for d in docs if len(d["batches"]) != len(set(d["batches"]))]
            problems += [f"{name}: {k} holds a batch twice" for k in repeated[:3]]
            got = sorted(
                ({"window_start": d["window_start"], **{k: d[k] for k in keys},
                  "plays": d["plays"]} for d in docs),
                key=lambda r: tuple(r[k] for k in ("window_start", *keys)),
            )  # fmt: skip
            plays = [{k: r[k] for k in ("window_start", *keys, "plays")} for r in want[name]]
            if got != plays:  # the sink keeps plays only (not what song listens said)
                diff = [(g, w) for g, w in zip(got, plays, strict=False) if g != w][:1]
                problems.append(
                    f"{name}: {len(got)} documents, {len(plays)} rows expected; first "
                    f"difference (got, expected): {diff}"
                )
            if len(batches) != len(fed):
                problems.append(f"{name}: written by {sorted(batches)}, {len(fed)} batches fed")
    finally:
        client.close()
    return problems


def _lake_sink(path: Path, resource: Any) -> Callable[[], ResultSink]:
    return lambda: open_sinks([SinkSpec("lake", str(path / "lake"))])[0]


def _check_lake(path: Path, resource: Any, fed: list[Fed]) -> list[str]:
    from tests.support.lake import lake_problems

    return lake_problems(path / "lake", None, [f.batch.events for f in fed])


MONGO_KEYS = {"song_minute": ("track_id", "artist", "song"), "artist_minute": ("artist",),
              "genre_minute": ("genre",)}  # fmt: skip
CASES = {
    "store:duckdb": Case(_store_only, _check_store),
    "store:postgresql": Case(_store_only, _check_store, fixture="postgres_url", in_server=True),
    "sink:csv": Case(_csv_sink, _check_csv),
    "sink:kafka-dlq": Case(_dlq_sink, _check_dlq, fixture="topics"),
    "sink:mongo": Case(_mongo_sink, _check_mongo, fixture="mongo_url"),
    "sink:lake": Case(_lake_sink, _check_lake),
}


def test_every_registered_backend_has_a_case() -> None:
    registered = {f"store:{n}" for n in STORES} | {f"sink:{n}" for n in SINKS}
    assert registered == set(CASES)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=[pytest.mark.integration] if case.fixture else [])
        for name, case in CASES.items()
    ],
)
def test_the_same_batches_give_the_same_results_with_no_doubles(
    name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    case = CASES[name]
    resource = request.getfixturevalue(case.fixture) if case.fixture else None
    prefix = resource.topic_prefix if case.fixture == "topics" else ""
    fed = make_batches(topic_prefix=prefix)
    store = open_store(_location(tmp_path, case, resource))
    driver = Driver(store, case.build(tmp_path, resource))
    try:
        driver.start()
        for i, batch in enumerate(fed):
            crash = {REPLAYED - 1: "after-write", REPLAYED: "before-write",
                     REPLAYED + 1: "before-commit"}.get(i)  # fmt: skip
            driver.feed(batch, crash)
            if crash == "before-commit":
                assert driver.replay_refused(batch, stale=fed[i - 1].position)
        driver.stop()
    finally:
        store.close()
    assert driver.crashed == ["after-write", "before-write", "before-commit"]
    problems = case.check(tmp_path, resource, fed)
    assert not problems, f"{name}:\n" + "\n".join(problems)
