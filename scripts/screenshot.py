"""Regenerate ``docs/dashboard.png``: the dashboard at 1440x900 in the system Chromium.

Starts a short ``backbeat demo`` with its web server (or uses ``--url`` of one already running),
waits until every chart has data and a little history has built up, then saves the viewport.
``make screenshot`` runs it; ``make screenshot URL=http://127.0.0.1:8000/`` uses a running demo.

Next: ``tests/support/dashboard.py`` (the demo and browser helpers it shares with the tests).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.dashboard import (  # noqa: E402  (after the path set-up above)
    chromium,
    missing_browser,
    running_demo,
    serving,
    settle,
    wait_for_data,
)

REPLAY_CHARTS = """() => ['topArtists', 'hourly'].every(n => {
    const c = window.backbeat && window.backbeat.charts[n];
    return c && c.data.datasets.some(d => d.data.some(v => v > 0));
})"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="dashboard of a running demo (default: start one)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--users", type=int, default=20_000, help="simulated users of the demo")
    parser.add_argument(
        "--warmup", type=float, default=25.0, help="seconds of data before the shot"
    )
    parser.add_argument(
        "--replay", nargs="+", type=Path, help="shoot `backbeat replay PATHS --serve` instead"
    )
    args = parser.parse_args()
    if reason := missing_browser():
        print(f"screenshot: {reason}", file=sys.stderr)
        return 1
    with ExitStack() as stack:
        url = args.url
        store = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "store"
        if url is None and args.replay:
            replayed = [str(p) for p in args.replay]
            url = stack.enter_context(
                serving("replay", *replayed, "--store", str(store), "--serve")
            )
        elif url is None:
            url = stack.enter_context(running_demo(store, users=args.users, duration=600))
        browser = stack.enter_context(chromium())
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(url)
        if args.replay:
            page.wait_for_function(REPLAY_CHARTS, timeout=60_000)
            settle(page, 3.0)
        else:
            wait_for_data(page)
            settle(page, args.warmup)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out))
    print(
        f"screenshot: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
