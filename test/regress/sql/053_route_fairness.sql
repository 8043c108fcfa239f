-- 053_route_fairness — tick() routes waiting messages accounts in turns, so one tenant's unroutable backlog never
-- keeps another tenant's messages waiting; waiting messages end ('expired') with their session.
-- Errors are printed as "SQLSTATE: message" by regress.try (000_setup.sql).
\set VERBOSITY terse

-- Other test files share this database: finish the work they left, so claims and tick() see only this file's.
SELECT regress.finish_leftover_work() \gset
\set QUIET off

-- tenant(name, number, agent_status) makes an account with one number and one agent in the given status.
CREATE FUNCTION pg_temp.tenant(name text, number text, agent_status text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE id bigint; agent bigint;
BEGIN
    id := darkspere.create_account(name, 'enterprise');
    PERFORM darkspere.add_number(id, number, 'AC053');
    SELECT agent_id INTO agent FROM darkspere.register_agent(id, name || ' bot', 'https://agent.example/053', 'http', 1000);
    PERFORM darkspere.set_agent_status(agent, agent_status);
    RETURN id;
END $$;
-- statuses(account) counts an account's messages by status.
CREATE FUNCTION pg_temp.statuses(account bigint) RETURNS TABLE (status text, messages bigint) LANGUAGE sql AS $$
    SELECT status, count(*) FROM darkspere.messages WHERE account_id = account AND direction = 'in'
     GROUP BY status ORDER BY status
$$;

-- Tenant A: 300 phones text a number whose only agent is in maintenance: 300 sessions, the lowest ids, each with
-- a waiting message.
SELECT pg_temp.tenant('fair A', '+15550530001', 'maintenance') AS a \gset
SELECT r.disposition, count(*)
  FROM generate_series(1, 300) n,
       darkspere.receive_sms('AC053', '+15550530001', '+1666053' || lpad(n::text, 4, '0'), 'anyone?', 'SM053-A-' || n) r
 GROUP BY 1;
-- Tenant B: one phone; its agent is away when the message arrives, then back.
SELECT pg_temp.tenant('fair B', '+15550530002', 'maintenance') AS b \gset
SELECT disposition FROM darkspere.receive_sms('AC053', '+15550530002', '+16660539999', 'hello B', 'SM053-B-1');
SELECT darkspere.set_agent_status(agent_id, 'active') FROM darkspere.agents WHERE account_id = :b;
-- The next tick routes B's message, whatever A's backlog.
SELECT (darkspere.tick())->'routed_messages' AS routed;
SELECT * FROM pg_temp.statuses(:b);
SELECT * FROM pg_temp.statuses(:a);

-- Turns page through many accounts: 150 accounts without any agent, each with a waiting message, and one more
-- routable account after them. A tick visits at most 100 accounts and the next starts where it stopped, so C's
-- message is routed within two ticks wherever the turn stood.
SELECT count(*) AS agentless_accounts
  FROM generate_series(1, 150) n,
       LATERAL (SELECT darkspere.create_account('fair none ' || n, 'enterprise') AS id) acct,
       LATERAL (SELECT darkspere.add_number(acct.id, '+1555054' || lpad(n::text, 4, '0'), 'AC053')) num,
       LATERAL darkspere.receive_sms('AC053', '+1555054' || lpad(n::text, 4, '0'), '+1666054' || lpad(n::text, 4, '0'), 'nobody',
                             'SM053-N-' || n) r
 WHERE r.disposition = 'queued';
SELECT pg_temp.tenant('fair C', '+15550530003', 'maintenance') AS c \gset
SELECT disposition FROM darkspere.receive_sms('AC053', '+15550530003', '+16660539998', 'hello C', 'SM053-C-1');
SELECT darkspere.set_agent_status(agent_id, 'active') FROM darkspere.agents WHERE account_id = :c;
SELECT darkspere.tick() IS NOT NULL AS ticked;
SELECT darkspere.tick() IS NOT NULL AS ticked;
SELECT * FROM pg_temp.statuses(:c);

-- A session that ends ends its waiting messages with it: A's sessions go idle, tick() expires them and their 300
-- messages, which stay stored as 'expired' (nothing vanishes; nothing is routed a day late).
SET darkspere.session_idle_timeout = '1h';
UPDATE darkspere.sessions SET last_activity_at = now() - interval '2 hours' WHERE account_id = :a AND state = 'active';
SELECT (darkspere.tick())->'expired_messages' AS expired_messages;
SELECT * FROM pg_temp.statuses(:a);
SELECT count(*) AS active_sessions_of_a FROM darkspere.sessions WHERE account_id = :a AND state = 'active';
-- The same when the phone's next message finds its session idle: the old waiting message expires with the old
-- session, and the new message waits in the new one.
SELECT darkspere.set_agent_status(agent_id, 'maintenance') FROM darkspere.agents WHERE account_id = :c;
SELECT disposition FROM darkspere.receive_sms('AC053', '+15550530003', '+16660539996', 'waits', 'SM053-C-3');
UPDATE darkspere.sessions SET last_activity_at = now() - interval '2 hours' WHERE phone = '+16660539996';
SELECT disposition FROM darkspere.receive_sms('AC053', '+15550530003', '+16660539996', 'again', 'SM053-C-4');
SELECT m.message_sid, m.status, s.state AS session
  FROM darkspere.messages m JOIN darkspere.sessions s USING (session_id)
 WHERE m.message_sid IN ('SM053-C-3', 'SM053-C-4') ORDER BY m.message_id;
RESET darkspere.session_idle_timeout;
