#!/usr/bin/env bash
# Run every bench/bench_*.py in turn, printing each one's figures and how long it took.
# Usage: scripts/run-benches.sh           full sizes (make bench)
#        scripts/run-benches.sh --quick   small sizes that run in seconds (make bench-smoke)
# The quick run has its own databases (suffix _smoke) and Redis db 15, so it can run beside
# pytest (clarion_test_*, Redis db 1…) or a full `make bench` (clarion_bench*, Redis db 14).
set -euo pipefail
cd "$(dirname "$0")/.."

python=.venv/bin/python
if [ "${1:-}" = --quick ]; then
  export BENCH_QUICK=1 BENCH_DB_SUFFIX=_smoke
  export BENCH_REDIS_URL="${BENCH_SMOKE_REDIS_URL:-redis://127.0.0.1:6379/15}"
fi

shopt -s nullglob
benches=(bench/bench_*.py)
[ "${#benches[@]}" -gt 0 ] || { echo "No bench/bench_*.py yet."; exit 0; }
for bench in "${benches[@]}"; do
  echo "== $bench"
  started=$SECONDS
  "$python" "$bench"
  echo "== $bench: $((SECONDS - started)) s"
done
