#!/usr/bin/env bash
# bench/run-citus.sh — receive_sms on a 3-node Citus cluster against one plain node, in the same run.
#
#   bench/run-citus.sh            3 rounds, 15 s per run, 4 clients (ROUNDS=…, DURATION=…, CLIENTS=… to change)
#   A_LIB=a/darkspere.so B_LIB=b/darkspere.so bench/run-citus.sh
#                                 every receive_sms run twice per round, with library A and with library B
#                                 (alternating which goes first; put_lib in lib.sh), on the same clusters: two
#                                 builds of src/ext compared in one run, each against the plain node with it
#
# One plain cluster (scripts/pgcluster) and a Citus coordinator with two workers (test/citus/cluster.sh), all on
# this machine's loopback. Both get bench/receive_sms/setup.sql (21 accounts, 55 agents, 10,000 phones warmed
# up); the Citus one then gets test/citus/distribute.sql, so its tenant tables are spread over the two workers.
# Per round: pgbench's TPC-B-like on the plain node (the baseline); an empty function Citus delegates to an
# account's node (delegated_floor.sql: the round trip every delegated text pays before any work); the spread
# receive_sms script on the plain node, the same script against the coordinator, and the same texts through
# receive_sms_for, which Citus delegates to the account's node (spread_delegated.sql). Both delegated calls are
# checked first to reach a node as one command. Prints every run, the medians, and Citus/plain for TPS and
# p50/p99 latency.
#
# On one 2-core machine the three Citus nodes share the cores the single node has to itself, so this measures
# the overhead of distribution (remote statements, two-phase commit), not scale-out.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"
. "$repo/test/citus/cluster.sh"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-15}
CLIENTS=${CLIENTS:-4}
citus_installed || { echo "Citus is not installed (docs/scaling.md, \"Building Citus\")" >&2; exit 1; }

work=$(mktemp -d /tmp/darkspere-bench-citus.XXXXXX)
chmod 755 "$work"
libs=("")
if [[ -n ${A_LIB:-}${B_LIB:-} ]]; then
    [[ -f ${A_LIB:-} && -f ${B_LIB:-} ]] || { echo "A_LIB and B_LIB must both name a darkspere.so" >&2; exit 2; }
    cp "$(pg_config --pkglibdir)/darkspere.so" "$work/installed.so"
    libs=(A B)
fi
cleanup() {
    "$repo/scripts/pgcluster" stop "$work/single" >/dev/null 2>&1 || true
    citus_stop "$work"
    [[ -f $work/installed.so ]] && put_lib "$work/installed.so"
    rm -rf "$work"
}
trap cleanup EXIT

echo "== plain node"
"$repo/scripts/pgcluster" start "$work/single" >/dev/null
single_port=$(cat "$work/single/port")
single() { psql -h 127.0.0.1 -p "$single_port" -U postgres -d postgres -qXAt -v ON_ERROR_STOP=1 "$@"; }
hardware
single -f "$here/receive_sms/setup.sql" >/dev/null
pgbench -h 127.0.0.1 -p "$single_port" -U postgres -i -q -s 10 postgres >/dev/null 2>&1

echo "== Citus: coordinator + 2 workers"
citus_start "$work"
citus_on coordinator -f "$here/receive_sms/setup.sql" >/dev/null
citus_on coordinator -f "$repo/test/citus/distribute.sql" >/dev/null
citus_on coordinator -c "SELECT 'shards of messages per node (port=count): '
                                  || string_agg(n || '=' || c, ' ' ORDER BY n)
                           FROM (SELECT d.nodeport::text AS n, count(*) AS c
                                   FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
                                   JOIN pg_dist_node d ON d.groupid = p.groupid
                                  WHERE s.logicalrelid = 'darkspere.messages'::regclass GROUP BY 1) x"
psql -h 127.0.0.1 -p "${citus_port[coordinator]}" -U postgres -d postgres -qX -v ON_ERROR_STOP=1 \
    -f "$here/receive_sms/smoke.sql" >/dev/null
# The delegated variant: darkspere.receive_sms_for, which distribute() registered with create_distributed_function:
# the whole text on the node of the account's shards (issue #16, item 3). Account ids 1..20 are the spread
# accounts (setup.sql creates them first). On that node the jobs it writes stay in that node's own queue (nothing
# claims them in this benchmark); the rate-limit rules setup.sql raised are reference tables, the same there.
# delegated_smoke FUNCTION ANSWER SQL: SQL must reach a node as one command calling FUNCTION (Citus logs what it
# sends) and answer ANSWER; otherwise the variant would measure a call run on the coordinator.
delegated_smoke() {
    local log
    log=$(citus_on coordinator -c "SET citus.log_remote_commands = on" -c "SET client_min_messages = log" -c "$3" 2>&1)
    [[ $(grep -c "NOTICE:  issuing" <<<"$log") == 1 ]] && grep -q "issuing SELECT .*$1(" <<<"$log" &&
        [[ $(tail -n 1 <<<"$log") == "$2" ]] ||
        { echo "$1 was not delegated as one command answering $2:" >&2; echo "$log" >&2; exit 1; }
}
delegated_smoke darkspere.receive_sms_for routed \
    "SELECT disposition FROM darkspere.receive_sms_for(3, 'ACbench03', '+15551000003', '+16660000042', 'smoke', 'SMdsmoke')"
# The floor: a function that only returns its argument, registered like receive_sms_for.
citus_on coordinator -c "CREATE FUNCTION public.bench_call_floor(account_id bigint) RETURNS bigint LANGUAGE plpgsql
                           AS \$\$ BEGIN RETURN account_id; END \$\$" >/dev/null
citus_on coordinator -c "SELECT create_distributed_function('public.bench_call_floor(bigint)', 'account_id',
                                                            colocate_with => 'darkspere.agents')" >/dev/null
delegated_smoke public.bench_call_floor 3 "SELECT public.bench_call_floor(3)"
single -c CHECKPOINT
for n in "${citus_nodes[@]}"; do citus_on "$n" -c CHECKPOINT; done

results=$work/results.tsv
: >"$results"
run() { # variant round [library: A or B]
    local port out tps p50 p99 name=$1${3:+_$3}
    case ${3:-} in
    A) put_lib "$A_LIB" ;;
    B) put_lib "$B_LIB" ;;
    esac
    local args=(-h 127.0.0.1 -U postgres -c "$CLIENTS" -j 2 -T "$DURATION" --log --log-prefix="$work/log")
    case $1 in
    tpcb) out=$(pgbench "${args[@]}" -p "$single_port" postgres 2>&1) ;;
    single) out=$(pgbench -n "${args[@]}" -p "$single_port" -f "$here/receive_sms/spread.sql" postgres 2>&1) ;;
    citus) out=$(pgbench -n "${args[@]}" -p "${citus_port[coordinator]}" -f "$here/receive_sms/spread.sql" postgres 2>&1) ;;
    delegated) out=$(pgbench -n "${args[@]}" -p "${citus_port[coordinator]}" -f "$here/receive_sms/spread_delegated.sql" postgres 2>&1) ;;
    floor) out=$(pgbench -n "${args[@]}" -p "${citus_port[coordinator]}" -f "$here/receive_sms/delegated_floor.sql" postgres 2>&1) ;;
    esac
    read -r tps p50 p99 < <(pgbench_stats "$out" "$work/log") && [[ -n $tps ]] || exit 1
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$2" "$tps" "$p50" "$p99" >>"$results"
    printf '  %-11s round %s: tps %8.1f  p50 %7.3f ms  p99 %7.3f ms\n' "$name" "$2" "$tps" "$p50" "$p99"
}
echo "== $ROUNDS rounds: tpcb (plain), receive_sms spread on the plain node and on Citus; -c $CLIENTS -T $DURATION"
for round in $(seq 1 "$ROUNDS"); do
    run tpcb "$round"
    run floor "$round" # calls no darkspere code: once per round, whatever the library
    order=("${libs[@]}")
    # With two libraries, which runs first alternates between rounds.
    if ((${#libs[@]} == 2 && round % 2 == 0)); then order=(B A); fi
    for lib in "${order[@]}"; do
        for v in single citus delegated; do run "$v" "$round" "$lib"; done
    done
done
med() { awk -F'\t' -v v="$1" -v c="$2" '$1 == v {print $c}' "$results" | median; }
echo "== medians"
for v in tpcb floor; do
    printf '%-11s tps %9s  p50 %8s ms  p99 %8s ms\n' "$v" "$(med "$v" 3)" "$(med "$v" 4)" "$(med "$v" 5)"
done
for lib in "${libs[@]}"; do
    s=${lib:+_$lib}
    for v in single citus delegated; do
        printf '%-11s tps %9s  p50 %8s ms  p99 %8s ms\n' "$v$s" "$(med "$v$s" 3)" "$(med "$v$s" 4)" "$(med "$v$s" 5)"
    done
    echo "${lib:+library $lib: }single/TPC-B (TPS): $(ratio "$(med "single$s" 3)" "$(med tpcb 3)")   citus/single (TPS): $(ratio "$(med "citus$s" 3)" "$(med "single$s" 3)")"
    echo "${lib:+library $lib: }citus/single latency: p50 $(ratio "$(med "citus$s" 4)" "$(med "single$s" 4)")x  p99 $(ratio "$(med "citus$s" 5)" "$(med "single$s" 5)")x   (issue #16 target: <= 2x)"
    echo "${lib:+library $lib: }delegated/single latency: p50 $(ratio "$(med "delegated$s" 4)" "$(med "single$s" 4)")x  p99 $(ratio "$(med "delegated$s" 5)" "$(med "single$s" 5)")x   delegated/single (TPS): $(ratio "$(med "delegated$s" 3)" "$(med "single$s" 3)")"
    echo "${lib:+library $lib: }floor/single latency: p50 $(ratio "$(med floor 4)" "$(med "single$s" 4)")x   (an empty delegated call against a whole text on one node)"
done
if ((${#libs[@]} == 2)); then
    for v in single citus delegated; do
        echo "B/A $v: TPS $(ratio "$(med "${v}_B" 3)" "$(med "${v}_A" 3)")  p50 $(ratio "$(med "${v}_B" 4)" "$(med "${v}_A" 4)")"
    done
fi
citus_on coordinator -c "SELECT 'inbound on Citus by status: ' || string_agg(status || '=' || n, ' ')
                           FROM (SELECT status, count(*) n FROM darkspere.messages WHERE direction = 'in'
                                  GROUP BY 1 ORDER BY 1) s"
