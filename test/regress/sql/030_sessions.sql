-- 030_sessions — one active session per (account, service number, phone): creation, stickiness, idle expiry, failover, history.
-- Errors are printed as "SQLSTATE: message" by regress.try (000_setup.sql).
\set VERBOSITY terse

-- Other test files share this database: finish the work they left, so claims and tick() see only this file's.
SELECT regress.finish_leftover_work() \gset
\set QUIET off

SELECT darkspere.create_account('sessions', 'pro') AS acct \gset
SELECT darkspere.add_number(:acct, '+15550300001', 'AC030');
SELECT darkspere.add_number(:acct, '+15550300002', 'AC030');
SELECT agent_id AS alpha FROM darkspere.register_agent(:acct, 'alpha', 'https://agent.example/alpha', 'http', 100) \gset
SELECT agent_id AS beta FROM darkspere.register_agent(:acct, 'beta', 'https://agent.example/beta', 'http', 100) \gset
CREATE FUNCTION pg_temp.r(from_number text, body text, sid text, to_number text DEFAULT '+15550300001')
RETURNS TABLE (disposition text, session_id bigint, agent text)
LANGUAGE sql AS $$
    SELECT r.disposition, r.session_id, (SELECT a.name FROM darkspere.agents a WHERE a.agent_id = r.agent_id)
      FROM darkspere.receive_sms('AC030', to_number, from_number, body, sid) r
$$;

-- get_or_create_session: created once, then returned again; phone and service number each make a new one.
SELECT (darkspere.get_or_create_session(:acct, '+15550300001', '+16660300001')).session_id AS s1 \gset
SELECT (darkspere.get_or_create_session(:acct, '+15550300001', '+16660300001')).session_id = :s1 AS same_session;
SELECT (darkspere.get_or_create_session(:acct, '+15550300001', '+16660300002')).session_id <> :s1 AS other_phone_other_session;
SELECT (darkspere.get_or_create_session(:acct, '+15550300002', '+16660300001')).session_id <> :s1 AS other_number_other_session;
SELECT service_number, phone, state, agent_id, ended_at FROM darkspere.sessions WHERE account_id = :acct ORDER BY session_id;
SELECT regress.try($$SELECT darkspere.get_or_create_session(NULL, '+15550300001', '+16660300001')$$) AS null_account;
SELECT regress.try($$SELECT darkspere.get_or_create_session(-1, '+15550300001', '+16660300001')$$) AS unknown_account;
SELECT regress.try(format($$SELECT darkspere.get_or_create_session(%s, 'not-a-number', '+16660300001')$$, :acct)) AS bad_service_number;
SELECT regress.try(format($$SELECT darkspere.get_or_create_session(%s, NULL, '+16660300001')$$, :acct)) AS null_service_number;
SELECT regress.try(format($$SELECT darkspere.get_or_create_session(%s, '+15550300001', '')$$, :acct)) AS empty_phone;
SELECT regress.try(format($$SELECT darkspere.get_or_create_session(%s, '+15550300001', NULL)$$, :acct)) AS null_phone;

-- Routing picks the healthiest, then least loaded agent; the session then sticks to it, whatever the load.
SELECT * FROM pg_temp.r('+16660300010', 'first of phone 10', 'SM030-001') \gset p10_
SELECT :'p10_agent' AS phone10_agent;
SELECT agent FROM pg_temp.r('+16660300011', 'first of phone 11', 'SM030-002');
SELECT agent FROM pg_temp.r('+16660300012', 'first of phone 12', 'SM030-003');
SELECT agent, session_id = :p10_session_id AS same_session FROM pg_temp.r('+16660300010', 'second of phone 10', 'SM030-004');
SELECT agent, session_id = :p10_session_id AS same_session FROM pg_temp.r('+16660300010', 'third of phone 10', 'SM030-005');
SELECT a.name, sum(l.in_flight) AS in_flight FROM darkspere.agents a JOIN darkspere.agent_load l USING (agent_id)
 WHERE a.account_id = :acct GROUP BY a.name ORDER BY a.name;
SELECT count(*) AS active_sessions_of_phone10 FROM darkspere.sessions WHERE phone = '+16660300010' AND state = 'active';

-- history: the session's messages, oldest first, the last max_messages of them.
SELECT direction, body FROM darkspere.history(:p10_session_id);
SELECT direction, body FROM darkspere.history(:p10_session_id, 2);
SELECT count(*) AS none FROM darkspere.history(:p10_session_id, 0);
SELECT regress.try(format($$SELECT darkspere.history(%s, -1)$$, :p10_session_id)) AS negative_max;
SELECT regress.try(format($$SELECT darkspere.history(%s, NULL)$$, :p10_session_id)) AS null_max;
SELECT regress.try($$SELECT darkspere.history(-1)$$) AS unknown_session;
SELECT regress.try($$SELECT darkspere.history(NULL)$$) AS null_session;

-- Idle expiry (default 24 h): 23 h of silence keeps the session, 25 h ends it and the next message starts anew.
UPDATE darkspere.sessions SET last_activity_at = now() - interval '23 hours' WHERE session_id = :p10_session_id;
SELECT session_id = :p10_session_id AS same_session FROM pg_temp.r('+16660300010', 'after 23 h', 'SM030-010');
UPDATE darkspere.sessions SET last_activity_at = now() - interval '25 hours' WHERE session_id = :p10_session_id;
SELECT session_id = :p10_session_id AS same_session, agent FROM pg_temp.r('+16660300010', 'after 25 h', 'SM030-011') \gset new10_
SELECT :'new10_same_session' AS same_session, :'new10_agent' AS agent;
SELECT session_id = :p10_session_id AS old, state, ended_at IS NOT NULL AS ended FROM darkspere.sessions
 WHERE phone = '+16660300010' ORDER BY session_id;
-- a new session starts with no history.
SELECT direction, body FROM darkspere.history((SELECT session_id FROM darkspere.sessions WHERE phone = '+16660300010' AND state = 'active'));
-- the timeout is a setting: at 1 hour, 2 hours of silence end the session.
SET darkspere.session_idle_timeout = '1h';
SHOW darkspere.session_idle_timeout;
UPDATE darkspere.sessions SET last_activity_at = now() - interval '2 hours' WHERE phone = '+16660300011' AND state = 'active';
SELECT (darkspere.get_or_create_session(:acct, '+15550300001', '+16660300011')).state;
SELECT state, count(*) FROM darkspere.sessions WHERE phone = '+16660300011' GROUP BY state ORDER BY state;
-- tick() ends idle sessions on its own, without waiting for a message.
UPDATE darkspere.sessions SET last_activity_at = now() - interval '2 hours' WHERE phone = '+16660300012' AND state = 'active';
SELECT darkspere.tick() IS NOT NULL AS ticked;
SELECT state, ended_at IS NOT NULL AS ended FROM darkspere.sessions WHERE phone = '+16660300012';
RESET darkspere.session_idle_timeout;
SELECT regress.try($$SET darkspere.session_idle_timeout = 30$$) AS below_minimum;

-- Failover: when a session's agent becomes ineligible, the session moves at its next message, history and all.
SELECT agent AS phone20_agent, session_id AS s20 FROM pg_temp.r('+16660300020', 'failover 1', 'SM030-020') \gset
SELECT :'phone20_agent' AS phone20_agent;
SELECT agent_id AS failing FROM darkspere.agents WHERE name = :'phone20_agent' AND account_id = :acct \gset
-- five consecutive failures open its circuit.
SELECT darkspere.record_agent_result(:failing, false, NULL) FROM generate_series(1, 5);
SELECT name, circuit, consecutive_failures FROM darkspere.agents WHERE agent_id = :failing;
SELECT agent <> :'phone20_agent' AS moved, session_id = :s20 AS same_session FROM pg_temp.r('+16660300020', 'failover 2', 'SM030-021');
SELECT (SELECT name FROM darkspere.agents a WHERE a.agent_id = s.agent_id) <> :'phone20_agent' AS session_rebound
  FROM darkspere.sessions s WHERE s.session_id = :s20;
SELECT direction, body FROM darkspere.history(:s20);
-- the moved session stays with its new agent.
SELECT agent <> :'phone20_agent' AS still_moved FROM pg_temp.r('+16660300020', 'failover 3', 'SM030-022');

-- An agent put in maintenance loses its sessions too; with no agent left, the message waits.
SELECT agent_id AS other FROM darkspere.agents WHERE account_id = :acct AND agent_id <> :failing AND name IN ('alpha', 'beta') \gset
SELECT darkspere.set_agent_status(:other, 'maintenance');
SELECT disposition, agent FROM pg_temp.r('+16660300020', 'nobody home', 'SM030-023');
SELECT status FROM darkspere.messages WHERE message_sid = 'SM030-023';

-- Capacity: a full agent gets no new sessions, but keeps serving its own.
SELECT darkspere.create_account('capacity', 'pro') AS cap \gset
SELECT darkspere.add_number(:cap, '+15550300003', 'AC030');
SELECT count(*) FROM darkspere.register_agent(:cap, 'single', 'https://agent.example/single', 'http', 1);
SELECT disposition, agent FROM pg_temp.r('+16660300030', 'takes the only slot', 'SM030-030', '+15550300003');
SELECT disposition, agent FROM pg_temp.r('+16660300031', 'no slot left', 'SM030-031', '+15550300003');
SELECT disposition, agent FROM pg_temp.r('+16660300030', 'sticky over capacity', 'SM030-032', '+15550300003');
