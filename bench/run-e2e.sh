#!/usr/bin/env bash
# bench/run-e2e.sh — end-to-end benchmark (see bench/e2e/run.mjs for what it measures and its knobs:
# ROUNDS, MESSAGES, CONCURRENCY, TPCB_SECONDS, SLOW_CALLS, OUTBOUND, MAX_IN_FLIGHT, PARTS).
# Needs `make && make install` first and test/e2e/node_modules (npm ci). Bounded by `timeout`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
[[ -x "$repo/build/src/worker/darkspere-worker" ]] || { echo "run \`make\` first" >&2; exit 1; }
[[ -d "$repo/test/e2e/node_modules" ]] || (cd "$repo/test/e2e" && npm ci --no-audit --no-fund --loglevel=error)
exec timeout "${BENCH_TIMEOUT:-1200}" node "$here/e2e/run.mjs"
