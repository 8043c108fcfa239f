#!/usr/bin/env bash
# bench/run-e2e.sh — end-to-end benchmark (see bench/e2e/run.mjs for what it measures and its knobs:
# ROUNDS, MESSAGES, CONCURRENCY, TPCB_SECONDS, SLOW_CALLS, OUTBOUND, MAX_IN_FLIGHT, PARTS, PEERS).
# Needs `make world && make install-world` first (the worker, and with PEERS=native — the default — the native peer
# build/bench/peer/darkspere-bench-peer) and test/e2e/node_modules (npm ci). Bounded by `timeout`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
[[ -x "$repo/build/src/worker/darkspere-worker" ]] || { echo "run \`make world\` first" >&2; exit 1; }
if [[ "${PEERS:-native}" == native && -z "${BENCH_PEER_BIN:-}" ]]; then
    [[ -x "$repo/build/bench/peer/darkspere-bench-peer" ]] ||
        { echo "run \`make world\` first (no build/bench/peer/darkspere-bench-peer; or PEERS=node)" >&2; exit 1; }
fi
[[ -d "$repo/test/e2e/node_modules" ]] || (cd "$repo/test/e2e" && npm ci --no-audit --no-fund --loglevel=error)
exec timeout "${BENCH_TIMEOUT:-1200}" node "$here/e2e/run.mjs"
