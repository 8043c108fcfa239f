#!/usr/bin/env bash
# bench/latency.sh — darkspere.latency() over 1M trace rows: how long a 1 h window takes (issue #14, target < 100 ms).
#
#   bench/latency.sh            ROWS=1000000 spread over SPAN=24 h, RUNS=7 timed calls per stage (medians printed)
#
# Starts a throwaway cluster with scripts/pgcluster (needs `make install` first), creates the extension, loads ROWS
# trace_events rows shaped like real traffic (per message: received, routed, queued, agent_call_started with a
# queue wait, agent_call_finished, reply_stored, sms_send_started, sms_send_finished, replied, delivery_status —
# ten rows, 4 of them carrying a stage latency), spread evenly over the last SPAN, VACUUM ANALYZE, then times
# latency(stage, '1 hour') RUNS times per stage and once for one agent, reporting each median (ms, from
# psql's \timing, client round trip included). KEEP=1 keeps the cluster.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"

ROWS=${ROWS:-1000000}
SPAN=${SPAN:-24 hours}
RUNS=${RUNS:-7}

work=$(mktemp -d /tmp/darkspere-latency.XXXXXX)
chmod 755 "$work"
cleanup() {
    "$repo/scripts/pgcluster" stop "$work/pg" || true
    if [[ -z "${KEEP:-}" ]]; then rm -rf "$work"; else echo "kept $work" >&2; fi
}
trap cleanup EXIT

eval "$("$repo/scripts/pgcluster" start "$work/pg" | sed 's/^/export /')"
echo "== cluster on port $PGPORT ($work/pg)"
hardware

echo "== loading $ROWS trace rows over the last $SPAN"
psql -qX -v ON_ERROR_STOP=1 -v rows="$ROWS" -v span="$SPAN" <<'SQL'
CREATE EXTENSION darkspere;
\timing on
INSERT INTO darkspere.trace_events (account_id, request_id, at, step, agent_id, latency_ms, detail)
SELECT 1 + msg % 20, 'req-' || msg,
       now() - :'span'::interval * (1 - msg::float8 / (:rows / 10)) + s.ord * interval '50 ms',
       s.step, CASE WHEN s.stage THEN 1 + msg % 50 END,
       CASE s.step WHEN 'agent_call_started' THEN (random() * 200)::int
                   WHEN 'agent_call_finished' THEN (200 + random() * random() * 3000)::int
                   WHEN 'sms_send_finished' THEN (80 + random() * 400)::int
                   WHEN 'replied' THEN (500 + random() * random() * 4000)::int END,
       pg_catalog.jsonb_build_object('job_id', msg)
  FROM generate_series(1, :rows / 10) msg
 CROSS JOIN (VALUES (1, 'received', false), (2, 'routed', false), (3, 'queued', false),
                    (4, 'agent_call_started', true), (5, 'agent_call_finished', true), (6, 'reply_stored', false),
                    (7, 'sms_send_started', false), (8, 'sms_send_finished', true), (9, 'replied', false),
                    (10, 'delivery_status', false)) s(ord, step, stage);
\timing off
VACUUM ANALYZE darkspere.trace_events;
SELECT 'rows: ' || count(*) || ', in the last hour: ' || count(*) FILTER (WHERE at >= now() - interval '1 hour')
  FROM darkspere.trace_events;
SELECT 'table + indexes: ' || pg_size_pretty(pg_total_relation_size('darkspere.trace_events'));
SQL

time_call() {  # time_call SQL → median ms of RUNS runs (after one warm-up)
    local sql=$1 i out
    out=$( { echo '\timing on'; for ((i = 0; i <= RUNS; i++)); do echo "$sql;"; done; } |
           psql -qAtX -v ON_ERROR_STOP=1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n "$RUNS")
    printf '%s\n' "$out" | median
}

echo "== latency(stage, '1 hour'): median of $RUNS runs (ms)"
for stage in inbound_to_reply agent_call sms_send queue_wait; do
    result=$(psql -qAtX -c "SELECT count, p50_ms, p95_ms, p99_ms FROM darkspere.latency('$stage')")
    printf '%-18s %8s ms   (count|p50|p95|p99: %s)\n' "$stage" \
        "$(time_call "SELECT * FROM darkspere.latency('$stage')")" "$result"
done
printf '%-18s %8s ms\n' "agent_call, agent 7" "$(time_call "SELECT * FROM darkspere.latency('agent_call', '1 hour', 7)")"
printf '%-18s %8s ms\n' "agent_call, 24 h" "$(time_call "SELECT * FROM darkspere.latency('agent_call', '24 hours')")"
