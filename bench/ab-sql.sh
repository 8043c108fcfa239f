#!/usr/bin/env bash
# bench/ab-sql.sh — A/B of two versions of some SQL functions on the receive_sms benchmark, in one cluster.
#
#   bench/ab-sql.sh A.sql B.sql      ROUNDS=4 DURATION=15 CLIENTS=2 by default
#   SCRIPT=path.sql bench/ab-sql.sh A.sql B.sql
#                                    another pgbench script of bench/receive_sms (default spread.sql; path.sql:
#                                    each text's whole path — receive, claims, the agent's answer, the send's ack)
#   A_LIB=a/darkspere.so B_LIB=b/darkspere.so bench/ab-sql.sh A.sql B.sql
#                                    also swap the extension's library (two builds of src/ext; each side's
#                                    file is copied over the installed one before its run, and every pgbench
#                                    run opens new connections, which load it; the installed one is put
#                                    back at the end)
#
# A.sql and B.sql each hold CREATE OR REPLACE FUNCTION statements for the same functions (the two versions
# compared). One throwaway cluster with the installed extension and bench/receive_sms/setup.sql; then, per
# round: pgbench's TPC-B-like, A.sql loaded + the spread receive_sms script, B.sql loaded + the same script (the
# order of A and B alternates between rounds). Same binary, same data, same cache: only the functions differ,
# so the ratio B/A is not blurred by a second install or a second cluster. Prints every run, the medians and
# the ratios B/A and each/TPC-B.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"
a_sql=$(realpath "${1:?usage: bench/ab-sql.sh A.sql B.sql}")
b_sql=$(realpath "${2:?usage: bench/ab-sql.sh A.sql B.sql}")
ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-15}
CLIENTS=${CLIENTS:-2}
SCRIPT=${SCRIPT:-spread.sql}
[[ -f $here/receive_sms/$SCRIPT ]] || { echo "no pgbench script bench/receive_sms/$SCRIPT" >&2; exit 2; }

work=$(mktemp -d /tmp/darkspere-ab.XXXXXX)
chmod 755 "$work"
installed_lib="$(pg_config --pkglibdir)/darkspere.so"
if [[ -n ${A_LIB:-}${B_LIB:-} ]]; then
    [[ -f ${A_LIB:-} && -f ${B_LIB:-} ]] || { echo "A_LIB and B_LIB must both name a darkspere.so" >&2; exit 2; }
    cp "$installed_lib" "$work/installed.so"
fi
cleanup() {
    "$repo/scripts/pgcluster" stop "$work/pg" >/dev/null 2>&1 || true
    [[ -f $work/installed.so ]] && put_lib "$work/installed.so"
    rm -rf "$work"
}
trap cleanup EXIT
eval "$("$repo/scripts/pgcluster" start "$work/pg" | sed 's/^/export /')"
hardware
psql -qX -v ON_ERROR_STOP=1 -f "$here/receive_sms/setup.sql" >/dev/null
# A script's own setup, when it has one (path.sql: path-setup.sql).
if [[ -f $here/receive_sms/${SCRIPT%.sql}-setup.sql ]]; then
    psql -qX -v ON_ERROR_STOP=1 -f "$here/receive_sms/${SCRIPT%.sql}-setup.sql" >/dev/null
fi
pgbench -i -q -s 10 >/dev/null 2>&1
psql -qAtX -c CHECKPOINT >/dev/null
results=$work/results.tsv
: >"$results"

run() { # variant round
    local out tps p50 p99
    case $1 in
    tpcb) out=$(pgbench -c "$CLIENTS" -j "$CLIENTS" -T "$DURATION" --log --log-prefix="$work/log" 2>&1) ;;
    *)
        if [[ -n ${A_LIB:-} ]]; then put_lib "$([[ $1 == A ]] && echo "$A_LIB" || echo "$B_LIB")"; fi
        psql -qX -v ON_ERROR_STOP=1 -f "$([[ $1 == A ]] && echo "$a_sql" || echo "$b_sql")" >/dev/null
        out=$(pgbench -n -c "$CLIENTS" -j "$CLIENTS" -T "$DURATION" --log --log-prefix="$work/log" \
            -f "$here/receive_sms/$SCRIPT" 2>&1)
        ;;
    esac
    read -r tps p50 p99 < <(pgbench_stats "$out" "$work/log") && [[ -n $tps ]] || exit 1
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$tps" "$p50" >>"$results"
    printf '  %-4s round %s: tps %9.1f  p50 %7.3f ms\n' "$1" "$2" "$tps" "$p50"
}

echo "== A: $a_sql ${A_LIB:-}"
echo "== B: $b_sql ${B_LIB:-}"
echo "== $ROUNDS rounds, -c $CLIENTS -T $DURATION, bench/receive_sms/$SCRIPT"
for round in $(seq 1 "$ROUNDS"); do
    run tpcb "$round"
    if ((round % 2)); then run A "$round"; run B "$round"; else run B "$round"; run A "$round"; fi
done
med() { awk -F'\t' -v v="$1" -v c="$2" '$1 == v {print $c}' "$results" | median; }
echo "== medians"
for v in tpcb A B; do printf '%-5s tps %10s  p50 %8s ms\n' "$v" "$(med "$v" 3)" "$(med "$v" 4)"; done
echo "B/A (median TPS): $(ratio "$(med B 3)" "$(med A 3)")   A/TPC-B: $(ratio "$(med A 3)" "$(med tpcb 3)")   B/TPC-B: $(ratio "$(med B 3)" "$(med tpcb 3)")"
