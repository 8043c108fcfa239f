#!/usr/bin/env bash
# bench/receive_sms/cpu-per-call.sh — backend CPU time per receive_sms call (spread pattern), immune to how busy
# the machine is in a way that pgbench's ratios are not.
#
#   bench/receive_sms/cpu-per-call.sh [REPS]      (default 3; uses the PostgreSQL that pg_config on PATH names)
#   CHECKPOINT=1 bench/receive_sms/cpu-per-call.sh [REPS]   CHECKPOINT before each run, and WAL bytes per call
#
# Starts a throwaway cluster, loads bench/receive_sms/setup.sql, then per repetition opens one session and calls
# receive_sms 6,000 times from a DO block (committing every 200) for the spread pattern (phone p texts account
# p % 20 + 1). It reads the backend's utime + stime from /proc/<pid>/stat before and after and prints CPU µs and
# wall µs per call. To compare two builds, alternate runs of each (PATH and PG_CONFIG pointing at two installs)
# and compare the minimums: neighbours on a shared machine add to the medians, never take away from the minimum.
# With CHECKPOINT=1 every run starts right after a checkpoint, so each pays the same full-page images (a
# checkpoint falling inside one build's run and not the other's skews an A/B), and the WAL per call is printed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
reps=${1:-3}
work=$(mktemp -d /tmp/darkspere-cpu.XXXXXX)
chmod 755 "$work"
trap '"$repo/scripts/pgcluster" stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
eval "$("$repo/scripts/pgcluster" start "$work/pg" | sed 's/^/export /')"
psql -qX -v ON_ERROR_STOP=1 -f "$repo/bench/receive_sms/setup.sql" >/dev/null
tck=$(getconf CLK_TCK)
for r in $(seq 1 "$reps"); do
    coproc P { psql -qAtX; }
    echo "SELECT pg_backend_pid();" >&"${P[1]}"
    read -r pid <&"${P[0]}"
    # one call first, so the session's plans are prepared before the clock starts
    echo "SELECT 'warm' FROM darkspere.receive_sms('ACbench01', '+15551000001', '+16660000020', 'hi', 'SMcpuw$r');" >&"${P[1]}"
    read -r _ <&"${P[0]}"
    if [[ ${CHECKPOINT:-0} == 1 ]]; then
        psql -qAtX -c CHECKPOINT >/dev/null
        lsn0=$(psql -qAtX -c "SELECT pg_current_wal_lsn()")
    fi
    cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    wall0=$(date +%s.%N)
    cat >&"${P[1]}" <<SQL
DO \$\$ BEGIN FOR i IN 1..6000 LOOP
  PERFORM darkspere.receive_sms('ACbench' || lpad(((i * 7919 % 10000) % 20 + 1)::text, 2, '0'),
                                '+1555100' || lpad(((i * 7919 % 10000) % 20 + 1)::text, 4, '0'),
                                '+1666' || lpad((i * 7919 % 10000)::text, 7, '0'),
                                'Hello, what are your opening hours today?', 'SMcpu$r' || '_' || i);
  IF i % 200 = 0 THEN COMMIT; END IF;
END LOOP; END \$\$;
SELECT 'done';
SQL
    read -r _ <&"${P[0]}"
    cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    wall1=$(date +%s.%N)
    wal=""
    if [[ ${CHECKPOINT:-0} == 1 ]]; then
        wal=" wal_bytes_per_call $(psql -qAtX -c "SELECT (pg_current_wal_lsn() - '$lsn0'::pg_lsn)::bigint / 6000")"
    fi
    exec {P[1]}>&-
    wait "$P_PID" 2>/dev/null || true
    awk -v a="$cpu0" -v b="$cpu1" -v t="$tck" -v w0="$wall0" -v w1="$wall1" -v r="$r" \
        -v wal="$wal" 'BEGIN { printf "run %d: cpu_us_per_call %.1f wall_us_per_call %.1f%s\n", r, (b - a) / t / 6000 * 1e6, (w1 - w0) / 6000 * 1e6, wal }'
done
