#!/usr/bin/env bash
# The CI test command (.ci/run), twice in a row, while two CPU-bound processes run beside it:
# the suite must pass on a loaded machine (tests wait for readiness, never a fixed sleep).
# Usage: scripts/ci_under_load.sh [RUNS]   (default 2); prints each run's time and result.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-2}"
burners=()
for _ in 1 2; do
    python3 -c 'while True: pass' &
    burners+=("$!")
done
trap 'kill "${burners[@]}" 2>/dev/null || true' EXIT
for run in $(seq 1 "$runs"); do
    started=$(date +%s)
    echo "== run $run of $runs, with ${#burners[@]} CPU-bound processes beside it (load $(cut -d' ' -f1 /proc/loadavg))"
    bash .ci/run
    echo "== run $run passed in $(( $(date +%s) - started )) s"
done
