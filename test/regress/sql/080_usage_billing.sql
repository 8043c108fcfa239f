-- 080_usage_billing — monthly usage per metric, included amounts, overage in integer cents.
-- Errors are printed as "SQLSTATE: message" by regress.try (000_setup.sql).
\set VERBOSITY terse

-- add_usage(account, metric, amount, months_ago) adds to a counter shard directly, as if traffic had been counted
-- (usage() sums all shards, so which one does not matter).
CREATE FUNCTION pg_temp.add_usage(account bigint, metric text, amount bigint, months_ago int DEFAULT 0) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO darkspere.usage_counters AS u (account_id, period, metric, shard, used)
    VALUES (account, (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => months_ago))::date, metric, 15, amount)
    ON CONFLICT (account_id, period, metric, shard) DO UPDATE SET used = u.used + EXCLUDED.used
$$;

-- The seeded plans (docs/architecture.md#defaults), money in cents.
SELECT plan, monthly_cents, sms_in_included, sms_out_included, agent_messages_included, max_agents, max_numbers,
       hard_cap, sms_overage_cents, agent_overage_cents FROM darkspere.plans ORDER BY monthly_cents;

-- A new account has used nothing.
SELECT darkspere.create_account('usage pro', 'pro') AS pro \gset
SELECT * FROM darkspere.usage(:pro);

-- Inbound SMS count segments, in the transaction of the message; agent messages count answered turns.
SELECT darkspere.add_number(:pro, '+15550800001', 'AC080');
SELECT count(*) FROM darkspere.register_agent(:pro, 'bot', 'https://agent.example/080', 'http', 100);
SELECT disposition FROM darkspere.receive_sms('AC080', '+15550800001', '+16660800001', 'one segment', 'SM080-001');
SELECT disposition FROM darkspere.receive_sms('AC080', '+15550800001', '+16660800002', repeat('two segments ', 13), 'SM080-002');
SELECT disposition FROM darkspere.receive_sms('AC080', '+15550800001', '+16660800003', 'UCS-2 ✓ ' || repeat('x', 65), 'SM080-003');
SELECT disposition FROM darkspere.receive_sms('AC080', '+15550800001', '+16660800004', 'STOP', 'SM080-004');
SELECT disposition FROM darkspere.receive_sms('AC080', '+15550800001', '+16660800004', 'suppressed, still received', 'SM080-005');
SELECT disposition FROM darkspere.receive_sms('AC080', '+15550800001', '+16660800001', 'one segment', 'SM080-001');
SELECT message_sid, encoding, segments FROM darkspere.messages WHERE account_id = :pro ORDER BY message_sid;
SELECT metric, used FROM darkspere.usage(:pro) WHERE metric = 'sms_in';
-- a transaction that rolls back counts nothing.
BEGIN;
SELECT disposition FROM darkspere.receive_sms('AC080', '+15550800001', '+16660800005', 'rolled back', 'SM080-006');
ROLLBACK;
SELECT metric, used FROM darkspere.usage(:pro) WHERE metric = 'sms_in';

-- Pro overage: 5 cents per SMS segment over the included amount, 1 cent per agent message.
SELECT pg_temp.add_usage(:pro, 'sms_in', 5000);           -- 5,007 in total: 7 over
SELECT pg_temp.add_usage(:pro, 'sms_out', 2000);          -- exactly the included amount
SELECT pg_temp.add_usage(:pro, 'agent_messages', 10123);  -- 123 over
SELECT * FROM darkspere.usage(:pro);
SELECT sum(overage_cents) AS total_overage_cents FROM darkspere.usage(:pro);
-- last month's usage is not this month's.
SELECT pg_temp.add_usage(:pro, 'sms_out', 99999, 1);
SELECT metric, used, overage FROM darkspere.usage(:pro) WHERE metric = 'sms_out';

-- Free plan: hard cap, never overage, whatever the counters say.
SELECT darkspere.create_account('usage free') AS free \gset
SELECT pg_temp.add_usage(:free, 'sms_in', 150);
SELECT pg_temp.add_usage(:free, 'agent_messages', 20);
SELECT * FROM darkspere.usage(:free);
-- Enterprise: unlimited (included is NULL), no overage.
SELECT darkspere.create_account('usage enterprise', 'enterprise') AS ent \gset
SELECT pg_temp.add_usage(:ent, 'sms_in', 1000000);
SELECT * FROM darkspere.usage(:ent);
-- A custom plan shows the arithmetic is integer cents: 3 over at 7 cents.
INSERT INTO darkspere.plans (plan, monthly_cents, sms_in_included, sms_out_included, agent_messages_included,
                             max_agents, max_numbers, hard_cap, sms_overage_cents, agent_overage_cents)
VALUES ('test-080', 100, 10, 10, 10, 1, 1, false, 7, 3);
SELECT darkspere.create_account('usage custom', 'test-080') AS custom \gset
SELECT pg_temp.add_usage(:custom, 'sms_out', 13);
SELECT pg_temp.add_usage(:custom, 'agent_messages', 11);
SELECT * FROM darkspere.usage(:custom);

-- Bad input.
SELECT regress.try($$SELECT darkspere.usage(NULL)$$) AS null_account;
SELECT regress.try($$SELECT darkspere.usage(-1)$$) AS unknown_account;
