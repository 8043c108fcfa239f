#!/usr/bin/env bash
# test/concurrency/rate_limit_100.sh — 100 concurrent messages from one phone at the default 60/min limit give
# exactly 60 routed, 1 rate_limited (the hit that blocks the phone) and 39 blocked; nothing else is stored.
#
# Connection from the PG* environment variables; creates and drops its own database. Exits non-zero on failure.
set -euo pipefail
db=darkspere_conc_rate_$$
work=$(mktemp -d)
cleanup() { dropdb --if-exists "$db" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

createdb "$db"
psql -qX -v ON_ERROR_STOP=1 -d "$db" <<'SQL'
CREATE EXTENSION darkspere;
SELECT darkspere.add_number(darkspere.create_account('concurrency', 'pro'), '+15559100001', 'ACconc') \gset
SELECT count(*) FROM darkspere.register_agent((SELECT account_id FROM darkspere.accounts WHERE name = 'concurrency'),
                                              'bot', 'https://agent.example/conc', 'http', 1000) \gset
CREATE TABLE outcomes (disposition text);
SQL

# One message per transaction; :client_id and a random number make every MessageSid unique.
cat >"$work/send.sql" <<'SQL'
\set n random(1, 1000000000)
INSERT INTO outcomes SELECT disposition FROM darkspere.receive_sms('ACconc', '+15559100001', '+16669100001', 'burst', 'SMconc-' || :client_id || '-' || :n || '-' || txid_current());
SQL
pgbench -n -c 10 -j 10 -t 10 -f "$work/send.sql" "$db" >"$work/pgbench.log" 2>&1 || { cat "$work/pgbench.log" >&2; exit 1; }

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
check "100 transactions ran" "SELECT count(*) FROM outcomes" 100
check "exactly 60 routed" "SELECT count(*) FROM outcomes WHERE disposition = 'routed'" 60
check "exactly 1 rate_limited" "SELECT count(*) FROM outcomes WHERE disposition = 'rate_limited'" 1
check "the other 39 blocked" "SELECT count(*) FROM outcomes WHERE disposition = 'blocked'" 39
check "exactly 60 messages stored, all routed" "SELECT count(*) || ' ' || count(*) FILTER (WHERE status = 'routed') FROM darkspere.messages" "60 60"
check "one agent_call per stored message" "SELECT count(*) FROM darkspere.jobs WHERE kind = 'agent_call'" 60
check "one session" "SELECT count(*) FROM darkspere.sessions" 1
check "60 inbound segments counted" "SELECT used FROM darkspere.usage((SELECT account_id FROM darkspere.accounts WHERE name = 'concurrency')) WHERE metric = 'sms_in'" 60
check "the phone is blocked with the account" "SELECT blocked_until > now() FROM darkspere.rate_limit_state WHERE scope = 'phone' AND subject = (SELECT account_id FROM darkspere.accounts WHERE name = 'concurrency') || ':+16669100001'" t
check "the phone's ceiling across tenants counts the 60 routed only" "SELECT hits || ' ' || (blocked_until IS NULL) FROM darkspere.rate_limit_state WHERE scope = 'phone_ceiling' AND subject = '+16669100001'" "60 true"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
