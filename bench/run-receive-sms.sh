#!/usr/bin/env bash
# bench/run-receive-sms.sh — receive_sms throughput vs. pgbench's built-in TPC-B-like, on one throwaway cluster.
#
#   bench/run-receive-sms.sh            3 rounds, 20 s per run (ROUNDS=…, DURATION=… to change)
#
# Starts a cluster with scripts/pgcluster in a temp directory, installs the extension (needs `make install`
# first), loads bench/receive_sms/setup.sql, initialises pgbench at scale 10, then runs, alternating within each
# round: TPC-B-like (`pgbench -c 8 -j 2 -T 20`), the spread receive_sms script, the hot receive_sms script and
# the batch script (BATCH=10 spread-like messages per receive_sms_batch call) — all with 8 clients, 2 threads
# and per-transaction logs (--log), from which p99 latency is computed. Prints each run and the medians, plus
# spread/TPC-B (target ≥ 1.0), hot/spread (target ≥ 0.7) and the messages/s of batch vs spread.
#
# Every run is bounded by -T; the cluster is stopped and removed on exit (KEEP=1 keeps it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-20}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
SCALE=${SCALE:-10}
BATCH=${BATCH:-10}

work=$(mktemp -d /tmp/darkspere-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
    "$repo/scripts/pgcluster" stop "$work/pg" || true
    if [[ -z "${KEEP:-}" ]]; then rm -rf "$work"; else echo "kept $work" >&2; fi
}
trap cleanup EXIT

eval "$("$repo/scripts/pgcluster" start "$work/pg" | sed 's/^/export /')"
echo "== cluster on port $PGPORT ($work/pg)"
hardware
psql -qAtX -c "SELECT 'settings: ' || string_agg(name || '=' || setting || COALESCE(unit, ''), ' ' ORDER BY name) FROM pg_settings WHERE name IN ('shared_buffers','max_connections','fsync','synchronous_commit','wal_level','max_wal_size','checkpoint_timeout','work_mem','wal_buffers','jit')"

echo "== setup (extension, 21 accounts, 55 agents, 10,000 phones warmed up)"
psql -qX -v ON_ERROR_STOP=1 -f "$here/receive_sms/setup.sql" >/dev/null
psql -qX -v ON_ERROR_STOP=1 -f "$here/receive_sms/smoke.sql"
echo "== pgbench -i -s $SCALE"
pgbench -i -q -s "$SCALE" >/dev/null 2>&1
psql -qAtX -c "CHECKPOINT"

logs="$work/logs"
mkdir -p "$logs"
chmod 777 "$logs"
results="$work/results.tsv"
: >"$results"

run_one() { # variant round
    local variant=$1 round=$2 out tps p99 p50 n
    local prefix="$logs/$variant.$round"
    local args=(-c "$CLIENTS" -j "$THREADS" -T "$DURATION" --log --log-prefix="$prefix")
    case "$variant" in
    tpcb) out=$(pgbench "${args[@]}" 2>&1) ;;
    spread) out=$(pgbench -n "${args[@]}" -f "$here/receive_sms/spread.sql" 2>&1) ;;
    hot) out=$(pgbench -n "${args[@]}" -f "$here/receive_sms/hot.sql" 2>&1) ;;
    batch) out=$(pgbench -n "${args[@]}" -D batch="$BATCH" -f "$here/receive_sms/batch.sql" 2>&1) ;;
    esac
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
    if [[ -z "$tps" ]]; then echo "$out" >&2; echo "pgbench failed ($variant)" >&2; exit 1; fi
    local failed
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
    # per-transaction log: client_id transaction_no time_us script_no epoch_s epoch_us
    n=$(cat "$prefix".* | wc -l)
    p50=$(cat "$prefix".* | awk '{print $3/1000}' | percentile 50)
    p99=$(cat "$prefix".* | awk '{print $3/1000}' | percentile 99)
    rm -f "$prefix".*
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$variant" "$round" "$tps" "$p50" "$p99" "$n" "${failed:-0}" >>"$results"
    printf '  %-7s round %s: tps %9.1f  p50 %7.3f ms  p99 %7.3f ms  (%s txns, %s failed)\n' \
        "$variant" "$round" "$tps" "$p50" "$p99" "$n" "${failed:-0}"
}

echo "== runs: $ROUNDS rounds x (tpcb, spread, hot, batch of $BATCH), -c $CLIENTS -j $THREADS -T $DURATION"
for round in $(seq 1 "$ROUNDS"); do
    for variant in tpcb spread hot batch; do
        run_one "$variant" "$round"
    done
done

echo "== after the runs"
psql -qAtX -c "SELECT 'inbound messages by status: ' || string_agg(status || '=' || n, ' ') FROM (SELECT status, count(*) n FROM darkspere.messages WHERE direction = 'in' GROUP BY 1 ORDER BY 1) s"
psql -qAtX -c "SELECT 'jobs (not consumed; no worker runs): ' || count(*) || ', table ' || pg_size_pretty(pg_total_relation_size('darkspere.jobs')) FROM darkspere.jobs"
psql -qAtX -c "SELECT 'sessions: ' || count(*) FROM darkspere.sessions"

med() { awk -F'\t' -v v="$1" -v c="$2" '$1 == v {print $c}' "$results" | median; }
tpcb_tps=$(med tpcb 3); spread_tps=$(med spread 3); hot_tps=$(med hot 3); batch_tps=$(med batch 3)
echo "== medians of $ROUNDS runs"
printf '%-8s %10s %10s %10s\n' variant tps p50_ms p99_ms
for v in tpcb spread hot batch; do
    printf '%-8s %10s %10s %10s\n' "$v" "$(med "$v" 3)" "$(med "$v" 4)" "$(med "$v" 5)"
done
echo "ratio spread/tpcb (median TPS): $(ratio "$spread_tps" "$tpcb_tps")   target >= 1.0"
echo "ratio hot/spread  (median TPS): $(ratio "$hot_tps" "$spread_tps")   target >= 0.7"
batch_msgs=$(awk -v t="$batch_tps" -v b="$BATCH" 'BEGIN {printf "%.1f", t * b}')
echo "batch: $batch_msgs messages/s ($BATCH per transaction); batch/spread messages/s $(ratio "$batch_msgs" "$spread_tps"), batch/tpcb $(ratio "$batch_msgs" "$tpcb_tps")"
echo "per-round ratios:"
for round in $(seq 1 "$ROUNDS"); do
    t=$(awk -F'\t' -v r="$round" '$1=="tpcb" && $2==r {print $3}' "$results")
    s=$(awk -F'\t' -v r="$round" '$1=="spread" && $2==r {print $3}' "$results")
    h=$(awk -F'\t' -v r="$round" '$1=="hot" && $2==r {print $3}' "$results")
    b=$(awk -F'\t' -v r="$round" -v n="$BATCH" '$1=="batch" && $2==r {printf "%.1f", $3 * n}' "$results")
    echo "  round $round: spread/tpcb $(ratio "$s" "$t")  hot/spread $(ratio "$h" "$s")  batch/spread (messages/s) $(ratio "$b" "$s")"
done
