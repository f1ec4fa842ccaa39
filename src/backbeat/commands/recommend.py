"""``backbeat recommend ...``: train, ask, and evaluate the recommender of a store.

``train`` fits a model on every listen the store holds and puts it on the store's shelf (a
process serving with ``--recommend`` picks it up without a restart); ``user`` and ``similar``
answer from the newest model with the store's listens folded in; ``evaluate`` scores a time
split against the most-played list.

Next: ``backbeat.recommend`` (the package), ``backbeat.wiring.recommend`` (serving).
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from backbeat.commands.common import (
    OPTS,
    duration,
    emit,
    emit_table,
    err_console,
    guard,
    parse_time,
    settings,
    store_option,
)
from backbeat.commands.stream import StoreOption

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow as pa

    from backbeat.recommend.service import Recommender
    from backbeat.simulate.catalog import Catalog
    from backbeat.sinks.queries import Reader

recommend_app = typer.Typer(
    help="Recommendations from listening history: train, ask, evaluate.", no_args_is_help=True
)
CatalogOption = Annotated[
    Path | None,
    typer.Option(
        help="Tracks with audio features (the Kaggle Spotify Tracks CSV or eventsim's "
        "listen_counts.txt.gz): their sound and new tracks count too (default: the tracks "
        "of the history)."
    ),
]
Factors = Annotated[int, typer.Option(min=2, max=512, help="ALS factors.")]
Iterations = Annotated[int, typer.Option(min=1, max=200, help="ALS iterations.")]
Limit = Annotated[int, typer.Option(min=1, max=200, help="How many tracks.")]
Recent = Annotated[
    str,
    typer.Option(
        help="Leave out tracks the listener heard this recently (before their latest "
        "listen in the store): 7d, 12h..."
    ),
]


def _catalog(path: Path | None) -> Catalog | None:
    from backbeat.simulate.catalog_file import load_catalog

    return None if path is None else load_catalog(path)


def _reader(store: str | None) -> Reader:
    from backbeat.sinks.registry import open_reader

    return open_reader(store_option(store) or settings().store)


def _status(message: str) -> contextlib.AbstractContextManager[object]:
    """A spinner on stderr while long work runs (nothing with --json)."""
    return contextlib.nullcontext() if OPTS.json else err_console.status(message)


@recommend_app.command()
def train(
    store: StoreOption = None,
    catalog: CatalogOption = None,
    factors: Factors = 64,
    iterations: Iterations = 15,
) -> None:
    """Train a model on every listen in the store and keep it beside the results."""
    from backbeat.recommend import store as shelved
    from backbeat.recommend.model import Params
    from backbeat.recommend.service import train_on
    from backbeat.sinks.registry import open_shelf

    def body() -> None:
        where = store_option(store) or settings().store
        reader, shelf = _reader(where), open_shelf(where)
        try:
            started = time.perf_counter()
            with _status("training: reading the listens, fitting ALS..."):
                model = train_on(reader, _catalog(catalog), Params(factors, iterations))
                model = shelved.save(shelf, model)
            seconds = time.perf_counter() - started
        finally:
            shelf.close()
            reader.close()
        emit(
            {
                "version": model.version,
                "users": len(model.user_ids),
                "tracks": len(model.items),
                "through_batch": model.through_batch,
                "seconds": round(seconds, 3),
            },
            f"model version {model.version}: {len(model.user_ids):,} listeners, "
            f"{len(model.items):,} tracks, through batch {model.through_batch} "
            f"({seconds:.1f}s)",
        )

    guard(body)


def _answer(
    store: str | None, ask: str, run: Callable[[Recommender], pa.Table], recent: str = "7d"
) -> None:
    from backbeat.recommend.service import Recommender
    from backbeat.sinks.registry import open_shelf

    recent_ms = int(duration(recent, "--recent").total_seconds() * 1000)
    where = store_option(store) or settings().store
    reader, shelf = _reader(where), open_shelf(where)
    try:
        recommender = Recommender(reader, shelf, recent_ms)
        recommender.refresh()
        table = run(recommender)
        served = recommender.served
        assert served is not None  # run() refused otherwise
        title = (
            f"{ask} · model version {served.model.version}, through batch {served.through_batch}"
        )
        emit_table(table.drop_columns(["model_version", "trained_at", "through_batch"]), title)
    finally:
        shelf.close()
        reader.close()


@recommend_app.command()
def user(
    user_id: Annotated[int, typer.Argument(metavar="ID", help="The listener's userId.")],
    store: StoreOption = None,
    limit: Limit = 10,
    recent: Recent = "7d",
) -> None:
    """Tracks for one listener (those heard recently left out), and why."""

    def run(recommender: Recommender) -> pa.Table:
        return recommender.recommendations(user_id, limit)

    guard(lambda: _answer(store, f"for listener {user_id}", run, recent))


@recommend_app.command()
def similar(
    track: Annotated[str, typer.Argument(help="A track id, spotify:track: URI or name key.")],
    store: StoreOption = None,
    limit: Limit = 10,
) -> None:
    """Tracks that sound like TRACK (and that its listeners play)."""

    def run(recommender: Recommender) -> pa.Table:
        return recommender.similar(track, limit)

    guard(lambda: _answer(store, f"like {track}", run))


@recommend_app.command()
def evaluate(
    store: StoreOption = None,
    catalog: CatalogOption = None,
    split: Annotated[
        str | None, typer.Option(help="Train before this time (ISO), test after it.")
    ] = None,
    test_share: Annotated[
        float, typer.Option(min=0.01, max=0.9, help="Without --split: share of the span tested.")
    ] = 0.15,
    users: Annotated[int, typer.Option(min=1, help="Listeners scored at most.")] = 5000,
    k: Annotated[int, typer.Option(min=1, max=100, help="Tracks per listener.")] = 10,
    recent: Recent = "7d",
) -> None:
    """Train on the past, score the next listens: NDCG, recall and coverage of the model and
    of the most-played list, side by side."""
    import pyarrow as pa

    from backbeat.recommend.evaluate import evaluate_store, split_of

    def body() -> None:
        reader = _reader(store)
        try:
            at = parse_time(split, "--split")
            split_ms = int(at.timestamp() * 1000) if at else split_of(reader, test_share)
            recent_ms = int(duration(recent, "--recent").total_seconds() * 1000)
            with _status("evaluating: training on the past, scoring the future..."):
                found = evaluate_store(
                    reader, split_ms, _catalog(catalog), k=k, max_users=users, recent_ms=recent_ms
                )
        finally:
            reader.close()
        when = datetime.fromtimestamp(split_ms / 1000, UTC).isoformat(timespec="seconds")
        model, baseline = _d(found.model), _d(found.baseline)
        names = {"ndcg": f"NDCG@{k}", "recall": f"recall@{k}", "coverage": "coverage"}
        if OPTS.json:
            emit(
                {
                    "split": when,
                    "users": len(found.users),
                    "k": k,
                    "model": model,
                    "most_played": baseline,
                    "train_listens": found.train_listens,
                    "test_listens": found.test_listens,
                },
                "",
            )
            return
        table = pa.Table.from_pylist(
            [
                {"metric": label, "model": round(model[m], 4), "most played": round(baseline[m], 4)}
                for m, label in names.items()
            ]
        )
        emit_table(
            table,
            f"split {when} · {len(found.users):,} listeners · {found.train_listens:,} listens "
            f"before, {found.test_listens:,} after",
        )

    guard(body)


def _d(scores: object) -> dict[str, float]:
    return {name: getattr(scores, name) for name in ("ndcg", "recall", "coverage")}
