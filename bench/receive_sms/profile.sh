#!/usr/bin/env bash
# bench/receive_sms/profile.sh — where receive_sms spends its time: a throwaway cluster with pg_stat_statements
# (track = all, so the SPI statements inside the C++ functions are counted), the bench setup, one bounded
# spread run (-T ${DURATION:-15}), then the top statements by total time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/darkspere-prof.XXXXXX); chmod 755 "$work"
trap '"$repo/scripts/pgcluster" stop "$work/pg" || true; rm -rf "$work"' EXIT
eval "$("$repo/scripts/pgcluster" start "$work/pg" | sed 's/^/export /')"
cat >>"$work/pg/data/postgresql.conf" <<CONF
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
CONF
"$repo/scripts/pgcluster" restart "$work/pg" >/dev/null
psql -qX -v ON_ERROR_STOP=1 -f "$here/setup.sql" >/dev/null
psql -qX -c "CREATE EXTENSION pg_stat_statements" -c "SELECT pg_stat_statements_reset()" >/dev/null
pgbench -n -c 8 -j 2 -T "${DURATION:-15}" -f "$here/${VARIANT:-spread}.sql" | grep -E '^tps|latency average'
psql -X -c "SELECT calls, round(total_exec_time::numeric, 0) AS total_ms, round(mean_exec_time::numeric, 4) AS mean_ms,
                   round((100 * total_exec_time / sum(total_exec_time) FILTER (WHERE toplevel) OVER ())::numeric, 1) AS pct_of_top,
                   toplevel, left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
              FROM pg_stat_statements WHERE calls > 100 ORDER BY total_exec_time DESC LIMIT 25"
