"""``backbeat simulate``: a simulated music service into one JSONL file per topic.

Next: ``backbeat.wiring.simulation``, ``backbeat.simulate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from backbeat.commands.common import OPTS, IncidentOption, emit, guard, simulator_settings

Users = Annotated[int, typer.Option(min=1, help="Number of users at the start.")]
Seed = Annotated[int | None, typer.Option(help="Random seed (default: config's seed).")]
Config = Annotated[Path | None, typer.Option(help="eventsim JSON config file.")]
CatalogFile = Annotated[
    Path | None,
    typer.Option(
        "--catalog",
        help="Tracks to play: the Kaggle Spotify Tracks CSV or eventsim's "
        "listen_counts.txt.gz (default: a synthetic catalog).",
    ),
]


def simulate(
    out: Annotated[Path, typer.Option(help="Folder for <topic>.jsonl files.")] = Path("events"),
    users: Users = 10_000,
    seed: Seed = None,
    start: Annotated[
        str | None, typer.Option(help="Event-time start, ISO (default: config or today-1d).")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Event-time end, ISO (default: start + 1 h).")
    ] = None,
    config: Config = None,
    catalog: CatalogFile = None,
    rate: Annotated[
        float | None, typer.Option(min=1, help="Pace output to this many events/s.")
    ] = None,
    incident: IncidentOption = None,
) -> None:
    """Simulate a music service and write one JSONL file per topic."""
    from backbeat import wiring

    def body() -> None:
        run = simulator_settings(users, seed, start, end, config, catalog, incident)
        counts = wiring.write_jsonl_run(run, out, rate=rate, progress=not OPTS.json)
        total = sum(counts.values())
        payload: dict[str, object] = {"out": str(out), "events": total, "per_topic": counts}
        lines = [
            f"wrote {total:,} events to {out}/ "
            + ", ".join(f"{t} {n:,}" for t, n in counts.items())
        ]
        if run.incidents:
            payload["incidents"] = [i.describe() for i in run.incidents]
            lines += [f"incident: {i.describe()}" for i in run.incidents]
        emit(payload, lines)

    guard(body)
