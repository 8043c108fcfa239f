#!/usr/bin/env bash
# bench/run-workers.sh — replies/s with 1, 2 and 3 workers on one database against pgbench's TPC-B-like baseline
# (see bench/workers/run.mjs for the method and its knobs: ROUNDS, WORKERS, MESSAGES, CONCURRENCY, PHONES,
# TPCB_SECONDS, WARMUP, WORKER_ARGS). Needs the worker and the native peer (`make world`), the extension installed,
# and test/e2e/node_modules. Bounded by `timeout`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
[[ -x "$repo/build/src/worker/darkspere-worker" ]] || { echo "run \`make world\` first" >&2; exit 1; }
[[ -n "${BENCH_PEER_BIN:-}" || -x "$repo/build/bench/peer/darkspere-bench-peer" ]] ||
    { echo "run \`make world\` first (no build/bench/peer/darkspere-bench-peer)" >&2; exit 1; }
[[ -d "$repo/test/e2e/node_modules" ]] || (cd "$repo/test/e2e" && npm ci --no-audit --no-fund --loglevel=error)
exec timeout "${BENCH_TIMEOUT:-900}" node "$here/workers/run.mjs"
