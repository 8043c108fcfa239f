#!/usr/bin/env bash
# test/concurrency/claim_jobs_8.sh — 8 concurrent claimers drain 2,000 jobs with claim_jobs (FOR UPDATE SKIP
# LOCKED): every job is claimed exactly once, by one worker, at attempt 1.
#
# Connection from the PG* environment variables; creates and drops its own database. Exits non-zero on failure.
set -euo pipefail
db=darkspere_conc_claim_$$
work=$(mktemp -d)
cleanup() { dropdb --if-exists "$db" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

createdb "$db"
psql -qX -v ON_ERROR_STOP=1 -d "$db" <<'SQL'
CREATE EXTENSION darkspere;
INSERT INTO darkspere.jobs (kind, max_attempts, idempotency_key, payload)
SELECT 'test_job', 3, 'conc-' || i, jsonb_build_object('n', i) FROM generate_series(1, 2000) i;
-- Every claim any worker saw, to look for a job handed out twice.
CREATE UNLOGGED TABLE claims (worker int, job_id bigint, attempt int);
SQL

# Each transaction claims up to 7 jobs (an odd size, so batches of the 8 clients interleave) and records them.
cat >"$work/claim.sql" <<'SQL'
INSERT INTO claims SELECT :client_id, job_id, attempt FROM darkspere.claim_jobs('w' || :client_id, 7, '10 minutes');
SQL
# 8 clients × 40 transactions × 7 jobs = 2,240 claim slots: enough to drain all 2,000 jobs.
pgbench -n -c 8 -j 8 -t 40 -f "$work/claim.sql" "$db" >"$work/pgbench.log" 2>&1 || { cat "$work/pgbench.log" >&2; exit 1; }

passed=0
failed=0
check() {  # check NAME SQL EXPECTED
    local got
    got=$(psql -qXtA -d "$db" -c "$2")
    if [[ "$got" == "$3" ]]; then
        passed=$((passed + 1)); echo "ok - $1"
    else
        failed=$((failed + 1)); echo "not ok - $1: expected '$3', got '$got'"
    fi
}
check "2,000 claims returned" "SELECT count(*) FROM claims" 2000
check "no job claimed twice" "SELECT count(*) FROM (SELECT job_id FROM claims GROUP BY job_id HAVING count(*) > 1) d" 0
check "every job claimed" "SELECT count(DISTINCT job_id) FROM claims" 2000
check "every claim is attempt 1" "SELECT count(*) FROM claims WHERE attempt <> 1" 0
check "every job running, owned by the worker that got it" \
    "SELECT count(*) FROM darkspere.jobs j JOIN claims c USING (job_id) WHERE j.state = 'running' AND j.claimed_by = 'w' || c.worker" 2000
check "all 8 workers got jobs" "SELECT count(DISTINCT worker) FROM claims" 8
check "nothing left to claim" "SELECT count(*) FROM darkspere.claim_jobs('late', 100)" 0

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
