#!/usr/bin/env bash
# bench/reply-10mb.sh — what one ack of a 10 MB agent reply costs the database (issue #10 item 3).
#
# Creates a scratch database with the extension, then RUNS times: one inbound SMS, its agent_call claimed, and
# complete_job with a result whose reply is 10 MB of text. The time measured is inside the server, from the
# result's JSON text to the committed-ready reply rows: the jsonb parse of the worker's parameter plus
# complete_job (reply planning, stored messages, sms_send jobs). Prints the median, min and max in ms, and how
# many messages and segments the reply became. Connection from PG* variables; the database is dropped at the end.
#
#   bench/reply-10mb.sh                 # 11 runs, darkspere.max_reply_segments at its default
#   RUNS=21 SEGMENTS=100 bench/reply-10mb.sh
set -euo pipefail
cd "$(dirname "$0")"
. ./lib.sh
runs=${RUNS:-11}
segments=${SEGMENTS:-}
bytes=${BYTES:-10485760}
db=darkspere_bench_reply
dropdb --if-exists "$db" >/dev/null
createdb "$db"
trap 'dropdb --if-exists "$db" >/dev/null' EXIT

psql -qX -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<SQL
CREATE EXTENSION darkspere;
SELECT darkspere.create_account('bench', 'enterprise') AS a \gset
SELECT darkspere.add_number(:a, '+14155550199', 'ACbench');
SELECT count(*) FROM darkspere.register_agent(:a, 'bot', 'https://agent.example/bench', 'http', 1000);
-- The worker's result as it arrives: JSON text, parsed by the server.
CREATE TABLE bench_result AS
    SELECT jsonb_build_object('reply', left(repeat('All work and no play makes Jack a dull boy. ', $bytes / 44 + 1), $bytes))::text AS result;
SQL

times=()
for ((i = 1; i <= runs; i++)); do
    ms=$(psql -qXAt -v ON_ERROR_STOP=1 -d "$db" <<SQL 2>&1 | sed -n 's/.*ms=//p'
${segments:+SET darkspere.max_reply_segments = $segments;}
SELECT disposition FROM darkspere.receive_sms('ACbench', '+14155550199', '+1415555' || lpad('$i', 4, '0'), 'talk', 'SMbench$i') \gset
DO \$\$
DECLARE c record; r text; j jsonb; t0 timestamptz; t1 timestamptz;
BEGIN
    SELECT result INTO r FROM bench_result;
    SELECT * INTO c FROM darkspere.claim_jobs('bench', 100) WHERE kind = 'agent_call';
    t0 := clock_timestamp();
    j := r::jsonb;
    t1 := clock_timestamp();
    PERFORM darkspere.complete_job(c.job_id, c.attempt, j);
    RAISE NOTICE 'ms=% % %', round(extract(epoch FROM clock_timestamp() - t0) * 1000, 3),
        round(extract(epoch FROM t1 - t0) * 1000, 3), round(extract(epoch FROM clock_timestamp() - t1) * 1000, 3);
END \$\$;
SQL
    )
    times+=("$ms")
done
shape=$(psql -qXAt -d "$db" -c "SELECT count(*) || ' messages, ' || sum(segments) || ' segments, cut from ' || coalesce(max(reply_truncated_from_bytes)::text, '(not cut)') || ' bytes'
                                  FROM darkspere.messages WHERE direction = 'out'
                                   AND reply_to = (SELECT max(message_id) FROM darkspere.messages WHERE direction = 'in')")
echo "reply: $bytes bytes; darkspere.max_reply_segments = ${segments:-default}; runs: $runs"
echo "last reply became: $shape"
# column: 1 total, 2 jsonb parse of the result, 3 complete_job
report() {
    local values
    values=$(printf '%s\n' "${times[@]}" | awk -v c="$2" '{print $c}')
    echo "$1 ms: median $(median <<<"$values"), min $(sort -g <<<"$values" | head -1), max $(sort -g <<<"$values" | tail -1)"
}
report "database (parse + complete_job)" 1
report "  jsonb parse of the result" 2
report "  complete_job" 3
