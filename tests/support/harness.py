"""Run the engine over a JSONL folder and compare what it stored with the oracle.

The comparisons fail with a short, readable diff (first rows missing, extra or different)
instead of pytest's dump of two lists with thousands of dicts.

Next: ``oracle.py`` (the expected side), ``tests/engine`` (the tests).
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.eventlog import EventLog
from tests.support.malformed import CATEGORIES, UNKNOWN_TOPIC
from tests.support.oracle import WINDOW_MS, Expected
from tests.support.stores import metric_rows, store_sql

STREAM_CLI = (sys.executable, "-X", "faulthandler", "-m", "backbeat", "--json", "stream")
"""``backbeat --json stream`` in a child process: an engine crash fails one test, not pytest."""
CSV_HEADER = ["window_start", "window_end", "genre", "count"]


def run_once(
    input_dir: Path,
    store_dir: Path,
    batch: int,
    csv_path: Path | None = None,
    max_events: int | None = None,
) -> dict[str, Any]:
    """One bounded run of the pipeline in a child process; its report as a dict.

    Fails the calling test (with the child's last output) if the engine raises or dies.
    """
    args = [
        *STREAM_CLI,
        "--input",
        str(input_dir),
        "--store",
        str(store_dir),
        "--batch-size",
        str(batch),
        "--timeout",
        "600",
    ]
    if csv_path is not None:
        args += ["--csv", str(csv_path)]
    if max_events is not None:
        args += ["--max-events", str(max_events)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBEAT_")}
    done = subprocess.run(args, capture_output=True, env=env, timeout=900, check=False)
    if done.returncode != 0:
        how = (
            f"killed by {signal.Signals(-done.returncode).name}"
            if done.returncode < 0
            else f"exit code {done.returncode}"
        )
        out = b"\n".join(done.stdout.splitlines()[-2:])
        tail = (out + b"\n" + done.stderr[-3000:]).decode(errors="replace")
        raise AssertionError(f"the engine crashed ({how}):\n{tail}")
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return report


def _diff(name: str, got: list[dict[str, Any]], want: list[dict[str, Any]]) -> str:
    key = lambda r: tuple(sorted(r.items()))  # noqa: E731
    g, w = Counter(map(key, got)), Counter(map(key, want))
    extra, missing = list((g - w).elements()), list((w - g).elements())
    return (
        f"{name}: {len(got)} rows stored, {len(want)} expected; "
        f"{len(missing)} missing e.g. {[dict(r) for r in missing[:3]]}; "
        f"{len(extra)} unexpected e.g. {[dict(r) for r in extra[:3]]}"
        + ("; same rows, different order" if not extra and not missing else "")
    )


def metric_mismatches(store_dir: Path | str, expected: Expected) -> list[str]:
    """One line per metric whose stored rows differ from the oracle's (empty: all equal)."""
    problems = []
    for name, want in expected.metrics.items():
        got = metric_rows(store_dir, name)
        if got != want:
            problems.append(_diff(name, got, want))
    return problems


def dead_letters(store_dir: Path | str) -> list[dict[str, Any]]:
    """All dead letters as (file, offset, reason, batch_id) rows (any SQL store)."""
    rows = store_sql(
        store_dir, 'SELECT partition, "offset", reason, batch_id FROM dead_letters ORDER BY 1, 2'
    )
    return [
        {
            "file": Path(r["partition"]).name,
            "offset": r["offset"],
            "reason": r["reason"],
            "batch_id": r["batch_id"],
        }
        for r in rows
    ]


def dead_letter_problems(store_dir: Path | str, log: EventLog, expected: Expected) -> list[str]:
    """Compare dead letters with malformed (manifest) + late (oracle) lines, exactly once each."""
    want: dict[tuple[str, int], tuple[str, tuple[str, ...]]] = {}
    for e in log.of_kind("malformed"):
        prefixes = (
            ("unknown_topic",) if e.category == UNKNOWN_TOPIC else CATEGORIES[e.category].prefixes
        )
        want[(e.file, e.offset)] = (e.category, prefixes)
    for name, offsets in expected.late.items():
        for off in offsets:
            want[(name, off)] = ("late", ("late",))
    got = dead_letters(store_dir)
    counts = Counter((r["file"], r["offset"]) for r in got)
    problems = [f"dead letter {k} stored {n} times" for k, n in counts.items() if n > 1]
    missing = sorted(set(want) - set(counts))
    extra = sorted(set(counts) - set(want))
    if missing:
        problems.append(
            f"{len(missing)} expected dead letters missing, e.g. "
            f"{[(k, want[k][0]) for k in missing[:5]]}"
        )
    if extra:
        reasons = {(r["file"], r["offset"]): r["reason"] for r in got}
        problems.append(
            f"{len(extra)} unexpected dead letters, e.g. "
            f"{[(k, reasons[k][:120]) for k in extra[:5]]}"
        )
    wrong = [
        (r["file"], r["offset"], want[(r["file"], r["offset"])][0], r["reason"][:100])
        for r in got
        if (r["file"], r["offset"]) in want
        and not r["reason"].startswith(want[(r["file"], r["offset"])][1])
    ]
    if wrong:
        problems.append(f"{len(wrong)} dead letters with an unexpected reason, e.g. {wrong[:5]}")
    return problems


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of ``results.csv`` (strict: the file must be clean UTF-8 CSV)."""
    text = path.read_bytes().decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = list(reader)
    return rows[0] if rows else [], [dict(zip(CSV_HEADER, r, strict=True)) for r in rows[1:]]


def iso(ms: int) -> str:
    """Epoch ms as the CSV's ISO-8601 UTC text (``2023-11-14T22:13:00Z``)."""
    return datetime.fromtimestamp(ms // 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def csv_problems(path: Path, expected: Expected, complete: bool) -> list[str]:
    """Check the CSV: header, each (window, genre) once, every row final and equal to the oracle.

    With ``complete``, the file must also hold every window final at the end of the log.
    """
    header, rows = read_csv(path)
    problems = [] if header == CSV_HEADER else [f"bad header {header}"]
    want = {
        (iso(r["window_start"]), iso(r["window_start"] + WINDOW_MS), r["genre"]): str(r["plays"])
        for r in expected.metrics["genre_minute"]
    }
    final = {(iso(r["window_start"]), r["genre"]) for r in expected.final_genre_rows()}
    seen = Counter((r["window_start"], r["genre"]) for r in rows)
    doubled = [k for k, n in seen.items() if n > 1]
    if doubled:
        problems.append(
            f"{len(doubled)} (window, genre) written more than once, e.g. {doubled[:3]}"
        )
    bad = [
        r for r in rows if want.get((r["window_start"], r["window_end"], r["genre"])) != r["count"]
    ]
    if bad:
        problems.append(f"{len(bad)} rows differ from the final counts, e.g. {bad[:3]}")
    not_final = [k for k in seen if k not in final]
    if not_final:
        problems.append(f"{len(not_final)} rows for windows not final, e.g. {not_final[:3]}")
    if complete and set(seen) != final:
        missing = sorted(final - set(seen))
        problems.append(f"{len(missing)} final windows missing, e.g. {missing[:3]}")
    return problems
