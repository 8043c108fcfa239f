-- bench/receive_sms/setup.sql — data for the receive_sms pgbench benchmark (run once on a fresh cluster).
--
-- Spread:  20 accounts on the 'enterprise' plan (no included caps, no hard cap, unlimited agents/numbers, so
--          quotas never trip), one service number each (+1555100NNNN, provider account ACbenchNN), 50 agents
--          spread round-robin over the accounts (accounts 1-10 get 3 agents, 11-20 get 2), capacity 1,000,000
--          each so routing never saturates even though no worker drains the queue during the bench.
-- Hot:     a 21st account ('bench-hot'), one number (+15552000001, ACbenchhot), 5 agents, same capacity.
-- Phones:  10,000 end-user phones +1666NNNNNNN. In the spread variant phone p always texts account (p % 20) + 1
--          (a phone talks to one business, like real traffic); in the hot variant every phone texts the hot number.
--
-- Rate limit: the seeded 'phone' rule allows 60 messages per phone and account per minute ('phone_ceiling': 600
-- across accounts). At ~1,000+ TPS over 10,000 phones
-- a phone gets ~6+ messages a minute in the spread case, but a 20 s run with three rounds and warm-up could still
-- approach the limit for hot phones, and once over it the phone is blocked (different, cheaper code path). We raise
-- the rule itself (not an override row, so the rule lookup path stays the one production takes) to 1,000,000 hits
-- per 60 s. rate_limit_hit still runs its upsert on rate_limit_state for every message, so the cost is measured.
\set ON_ERROR_STOP on
CREATE EXTENSION IF NOT EXISTS darkspere;

UPDATE darkspere.rate_limit_rules SET max_hits = 1000000 WHERE scope IN ('phone', 'phone_ceiling');

DO $$
DECLARE
    acct bigint;
BEGIN
    FOR i IN 1..20 LOOP
        acct := darkspere.create_account('bench-' || i, 'enterprise', 'Bench help text.');
        PERFORM darkspere.add_number(acct, '+1555100' || lpad(i::text, 4, '0'), 'ACbench' || lpad(i::text, 2, '0'));
    END LOOP;
    FOR j IN 0..49 LOOP
        PERFORM darkspere.register_agent((SELECT account_id FROM darkspere.accounts WHERE name = 'bench-' || (j % 20 + 1)),
                                         'agent-' || j, 'http://127.0.0.1:9/agent/' || j, 'http', 1000);
    END LOOP;
    acct := darkspere.create_account('bench-hot', 'enterprise', 'Bench help text.');
    PERFORM darkspere.add_number(acct, '+15552000001', 'ACbenchhot');
    FOR j IN 1..5 LOOP
        PERFORM darkspere.register_agent(acct, 'hot-agent-' || j, 'http://127.0.0.1:9/hot/' || j, 'http', 1000);
    END LOOP;
END $$;
-- Capacity is at most 1,000 in production (a CHECK constraint); this bench has no worker draining agent_load, so it
-- lifts the ceiling on its own throwaway cluster to keep routing unsaturated, as described above.
ALTER TABLE darkspere.agents DROP CONSTRAINT agents_capacity_max;
UPDATE darkspere.agents SET capacity = 1000000;

-- Unique MessageSids across every run: one sequence, read inside the benchmarked statement.
CREATE SCHEMA IF NOT EXISTS bench;
CREATE SEQUENCE IF NOT EXISTS bench.sid CACHE 100;

-- Warm-up: one message per (phone, variant) so each round measures steady-state traffic (sessions exist and
-- are bound to agents) rather than a first round full of session creation. Committed in batches of 500 so no
-- transaction holds thousands of dedupe advisory locks.
DO $$
BEGIN
    FOR p IN 1..10000 LOOP
        PERFORM darkspere.receive_sms('ACbench' || lpad((p % 20 + 1)::text, 2, '0'),
                                      '+1555100' || lpad((p % 20 + 1)::text, 4, '0'),
                                      '+1666' || lpad(p::text, 7, '0'), 'warm up', 'SMwarm' || p);
        PERFORM darkspere.receive_sms('ACbenchhot', '+15552000001', '+1666' || lpad(p::text, 7, '0'), 'warm up',
                                      'SMwarmhot' || p);
        IF p % 500 = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
END $$;
VACUUM ANALYZE;
