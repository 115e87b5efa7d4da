#!/usr/bin/env bash
# Run every bench/bench_*.py in turn, printing each one's figures and how long it took.
# Usage: scripts/run-benches.sh           full sizes (make bench)
#        scripts/run-benches.sh --quick   small sizes that run in seconds (make bench-smoke)
# Also bench/netns_send.py (workers in network namespaces, needs root): in the full run whenever
# it runs as root, in the quick run only with BENCH_NETNS=1. BENCH_SEND_MILLION=1 adds the
# 1,000,000-recipient send with 2 and 4 workers (bench_send.py --million, about 15 minutes).
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
run() {  # run NAME COMMAND...: print its figures and how long it took
  echo "== $1"
  local started=$SECONDS
  "${@:2}"
  echo "== $1: $((SECONDS - started)) s"
}

for bench in "${benches[@]}"; do
  run "$bench" "$python" "$bench"
done
if [ "$(id -u)" -ne 0 ]; then
  echo "== bench/netns_send.py: skipped (ip netns needs root)"
elif [ "${1:-}" != --quick ] || [ "${BENCH_NETNS:-0}" = 1 ]; then
  run bench/netns_send.py "$python" bench/netns_send.py
fi
if [ "${1:-}" != --quick ] && [ "${BENCH_SEND_MILLION:-0}" = 1 ]; then
  run "bench/bench_send.py --million" "$python" bench/bench_send.py --million
fi
