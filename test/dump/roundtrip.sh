#!/usr/bin/env bash
# test/dump/roundtrip.sh — pg_dump keeps DarkSpere's data: dump a database with traffic in it, restore it into
# a fresh database, and compare every table. Connection from PG* variables; creates and drops its databases.
set -euo pipefail
src=darkspere_dump_src
dst=darkspere_dump_dst
dump=$(mktemp /tmp/darkspere-dump.XXXXXX)
trap 'rm -f "$dump"; dropdb --if-exists "$src"; dropdb --if-exists "$dst"' EXIT
dropdb --if-exists "$src"; dropdb --if-exists "$dst"
createdb "$src"; createdb "$dst"

psql -qX -v ON_ERROR_STOP=1 -d "$src" >/dev/null <<'SQL'
CREATE EXTENSION darkspere;
INSERT INTO darkspere.plans (plan, monthly_cents, hard_cap) VALUES ('custom', 100, false);
SELECT darkspere.create_account('Dump test', 'custom', 'help text') AS a \gset
SELECT darkspere.add_number(:a, '+14155550199', 'AC1');
SELECT * FROM darkspere.register_agent(:a, 'agent', 'http://127.0.0.1:9/x');
SELECT * FROM darkspere.receive_sms('AC1', '+14155550199', '+14155550100', 'hello', 'SM1');
SELECT * FROM darkspere.receive_sms('AC1', '+14155550199', '+14155550101', 'STOP', 'SM2');
SELECT * FROM darkspere.claim_jobs('w');
SELECT darkspere.complete_job(1, 1, '{"reply": "hi"}');
-- A body redacted by retention: the row and its body_redacted_at survive the round trip.
UPDATE darkspere.messages SET body = '', body_redacted_at = now() WHERE message_sid = 'SM2';
SQL

# An agent signing secret (rotated, so the agents row records a rotation) must not be in the dump: none is stored.
secret=$(psql -qXAt -v ON_ERROR_STOP=1 -d "$src" -c "SELECT darkspere.rotate_agent_secret(agent_id) FROM darkspere.agents")
pg_dump -d "$src" >"$dump"
psql -qX -v ON_ERROR_STOP=1 -d "$dst" -f "$dump" >/dev/null

# Every table of the schema that holds data a dump must keep: read from the catalog, so that a new table is compared
# without anyone listing it. Unlogged tables (rate_limit_state, route_cursor) are hints, not data: pg_dump leaves
# their rows out on purpose (test/regress/sql/110_pg_dump.sql). A logged table left out of the extension's
# config-dump registration would lose its rows, and fails here.
mapfile -t tables < <(psql -qXAt -v ON_ERROR_STOP=1 -d "$src" -c "
    SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'darkspere' AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p' ORDER BY 1")
# A guard against an empty or broken query: the tables of 0.1.0 are all there.
for t in plans accounts numbers agents agent_load sessions messages delivery_events opt_outs consent_events \
         rate_limit_rules rate_limit_overrides usage_counters jobs; do
    [[ " ${tables[*]} " == *" $t "* ]] || { echo "not ok: darkspere.$t is missing from the catalog's table list"; exit 1; }
done
passed=0
failed=0
for t in "${tables[@]}"; do
    query="SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM darkspere.$t t"
    a=$(psql -qXAt -d "$src" -c "$query")
    b=$(psql -qXAt -d "$dst" -c "$query" 2>&1) || b="missing after restore"
    if [[ "$a" == "$b" ]]; then passed=$((passed + 1)); else echo "not ok: darkspere.$t differs after restore"; failed=$((failed + 1)); fi
done
# Sequences continue where they were: a new account after restore must not reuse an id.
next_src=$(psql -qXAt -d "$src" -c "SELECT darkspere.create_account('after', 'free')")
next_dst=$(psql -qXAt -d "$dst" -c "SELECT darkspere.create_account('after', 'free')")
if [[ "$next_src" == "$next_dst" ]]; then passed=$((passed + 1)); else echo "not ok: sequence not restored ($next_src vs $next_dst)"; failed=$((failed + 1)); fi
if [[ $secret == dsk_* ]] && ! grep -q "${secret#dsk_}" "$dump"; then passed=$((passed + 1)); else echo "not ok: an agent signing secret is in the dump (or none was made)"; failed=$((failed + 1)); fi
echo "dump round trip: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
