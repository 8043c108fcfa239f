-- 040_health — agent health score (uptime ×60 + latency band + recent failures) and the circuit breaker.
-- Errors are printed as "SQLSTATE: message" by regress.try (000_setup.sql).
\set VERBOSITY terse

-- Other test files share this database: finish the work they left, so claims and tick() see only this file's.
SELECT regress.finish_leftover_work() \gset
\set QUIET off

SELECT darkspere.create_account('health', 'enterprise') AS acct \gset
SELECT darkspere.add_number(:acct, '+15550400001', 'AC040');
-- h(name) registers an agent and returns its id; s(id) shows its health row.
CREATE FUNCTION pg_temp.h(name text) RETURNS bigint LANGUAGE sql AS $$
    SELECT agent_id FROM darkspere.register_agent((SELECT account_id FROM darkspere.accounts WHERE name = 'health'), name, 'https://agent.example/' || name)
$$;
CREATE FUNCTION pg_temp.s(id bigint)
RETURNS TABLE (health_score int, results_count int, latency_ms int, consecutive_failures int, circuit text)
LANGUAGE sql AS $$
    SELECT health_score, results_count, latency_ms, consecutive_failures, circuit FROM darkspere.agents WHERE agent_id = id
$$;

-- A new agent has no history and full health.
SELECT pg_temp.h('fresh') AS fresh \gset
SELECT * FROM pg_temp.s(:fresh);

-- Latency band (30 / 20 / 10 / 0 below 500 / 1000 / 2000 ms / above), after one successful call.
SELECT count(darkspere.record_agent_result(pg_temp.h('lat' || ms), true, ms)) AS agents
  FROM unnest(ARRAY[0, 499, 500, 999, 1000, 1999, 2000, 60000]) ms;
SELECT latency_ms, health_score FROM darkspere.agents WHERE account_id = :acct AND name LIKE 'lat%' ORDER BY latency_ms;
-- latency is a moving average weighting the newest call 1/5: 200 then 1000 → 360 ms (still the top band).
SELECT pg_temp.h('avg') AS avg \gset
SELECT darkspere.record_agent_result(:avg, true, 200);
SELECT darkspere.record_agent_result(:avg, true, 1000);
SELECT * FROM pg_temp.s(:avg);
-- a success without latency keeps the average; a failure never changes it.
SELECT darkspere.record_agent_result(:avg, true, NULL);
SELECT darkspere.record_agent_result(:avg, false, 5000);
SELECT * FROM pg_temp.s(:avg);

-- Uptime share (×60) and recent failures among the last 10 calls (10 / 7 / 3 / 0 for 0 / 1 / 2 / ≥3).
SELECT pg_temp.h('mixed') AS mixed \gset
SELECT darkspere.record_agent_result(:mixed, true, 100) FROM generate_series(1, 9);
SELECT darkspere.record_agent_result(:mixed, false, NULL);
SELECT * FROM pg_temp.s(:mixed);                                   -- 9/10 up: 54 + 30 + 7
SELECT darkspere.record_agent_result(:mixed, false, NULL);
SELECT * FROM pg_temp.s(:mixed);                                   -- 9/11 up: 49 + 30 + 3
SELECT darkspere.record_agent_result(:mixed, false, NULL);
SELECT * FROM pg_temp.s(:mixed);                                   -- 9/12 up: 45 + 30 + 0
SELECT darkspere.record_agent_result(:mixed, true, 100) FROM generate_series(1, 10);
SELECT * FROM pg_temp.s(:mixed);                                   -- 19/22 → last 20: 17/20 up: 51 + 30 + 10
-- the first call of a new agent failing: nothing up yet.
SELECT pg_temp.h('first_fail') AS first_fail \gset
SELECT darkspere.record_agent_result(:first_fail, false, NULL);
SELECT * FROM pg_temp.s(:first_fail);                              -- 0 + 30 + 7

-- Circuit breaker: 4 consecutive failures keep it closed, a success resets the count.
SELECT pg_temp.h('flaky') AS flaky \gset
SELECT darkspere.record_agent_result(:flaky, false, NULL) FROM generate_series(1, 4);
SELECT consecutive_failures, circuit FROM pg_temp.s(:flaky);
SELECT darkspere.record_agent_result(:flaky, true, 100);
SELECT consecutive_failures, circuit FROM pg_temp.s(:flaky);
-- 5 consecutive failures open it for 60 s.
SELECT pg_temp.h('broken') AS broken \gset
SELECT darkspere.record_agent_result(:broken, false, NULL) FROM generate_series(1, 5);
SELECT circuit, consecutive_failures, circuit_until BETWEEN now() + interval '55 s' AND clock_timestamp() + interval '60 s' AS open_60s
  FROM darkspere.agents WHERE agent_id = :broken;
-- more failures while open keep it open and do not extend the cool-down.
SELECT circuit_until AS until_before FROM darkspere.agents WHERE agent_id = :broken \gset
SELECT darkspere.record_agent_result(:broken, false, NULL);
SELECT circuit, circuit_until = :'until_before' AS same_until FROM darkspere.agents WHERE agent_id = :broken;

-- During the cool-down the agent gets no traffic. Make it the account's only active agent to see that.
UPDATE darkspere.agents SET status = 'disabled' WHERE account_id = :acct AND agent_id <> :broken;
SELECT disposition, agent_id FROM darkspere.receive_sms('AC040', '+15550400001', '+16660400001', 'during cool-down', 'SM040-001');
-- After the cool-down, one trial call goes through (half-open) …
UPDATE darkspere.agents SET circuit_until = now() - interval '1 second' WHERE agent_id = :broken;
SELECT disposition, agent_id = :broken AS trial_agent FROM darkspere.receive_sms('AC040', '+15550400001', '+16660400002', 'trial', 'SM040-002');
SELECT circuit, circuit_until > now() AS trial_deadline_set FROM darkspere.agents WHERE agent_id = :broken;
-- … and only one: a second new conversation is not routed to the agent under trial.
SELECT disposition, agent_id FROM darkspere.receive_sms('AC040', '+15550400001', '+16660400003', 'while trial runs', 'SM040-003');
-- A failed trial opens the circuit again for a new cool-down.
SELECT darkspere.record_agent_result(:broken, false, NULL);
SELECT circuit, circuit_until > now() + interval '55 s' AS new_cool_down FROM darkspere.agents WHERE agent_id = :broken;
-- A successful trial closes it and starts a fresh history.
UPDATE darkspere.agents SET circuit_until = now() - interval '1 second' WHERE agent_id = :broken;
SELECT disposition, agent_id = :broken AS trial_agent FROM darkspere.receive_sms('AC040', '+15550400001', '+16660400004', 'trial 2', 'SM040-004');
SELECT darkspere.record_agent_result(:broken, true, 300);
SELECT *, (SELECT circuit_until FROM darkspere.agents WHERE agent_id = :broken) AS circuit_until FROM pg_temp.s(:broken);
SELECT disposition, agent_id = :broken AS back_in_service FROM darkspere.receive_sms('AC040', '+15550400001', '+16660400005', 'healthy again', 'SM040-005');

-- Bad input.
SELECT regress.try($$SELECT darkspere.record_agent_result(NULL, true, 1)$$) AS null_agent;
SELECT regress.try($$SELECT darkspere.record_agent_result(-1, true, 1)$$) AS unknown_agent;
SELECT regress.try(format($$SELECT darkspere.record_agent_result(%s, NULL, 1)$$, :fresh)) AS null_ok;
SELECT regress.try(format($$SELECT darkspere.record_agent_result(%s, true, -1)$$, :fresh)) AS negative_latency;
SELECT * FROM pg_temp.s(:fresh);
