-- 058_receive_sms_for — receive_sms keyed by the number's account: the entry point Citus delegates to the node
-- of that account (darkspere.distribute() registers it). The same decision and result row as receive_sms; a
-- number of another account is refused, naming both, and nothing is stored.
\set VERBOSITY terse

SELECT regress.finish_leftover_work() \gset
\set QUIET off

SELECT darkspere.create_account('keyed receive', 'pro') AS acct \gset
SELECT darkspere.create_account('keyed other', 'pro') AS other \gset
SELECT darkspere.add_number(:acct, '+15550580001', 'AC058');
SELECT darkspere.add_number(:other, '+15550580002', 'AC058');
SELECT agent_id AS bot FROM darkspere.register_agent(:acct, 'bot', 'https://agent.example/bot', 'http', 100) \gset

-- The account must be given and positive; a number of another account is refused (22023), an unknown number
-- answered as receive_sms answers it. Nothing is stored by the refusals.
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_for(NULL, 'AC058', '+15550580001', '+16660580001', 'hi', 'SM058-x')$$) AS no_account;
SELECT regress.try($$SELECT * FROM darkspere.receive_sms_for(0, 'AC058', '+15550580001', '+16660580001', 'hi', 'SM058-x')$$) AS zero_account;
SELECT regress.try(format($$SELECT * FROM darkspere.receive_sms_for(%s, 'AC058', '+15550580002', '+16660580001', 'hi', 'SM058-x')$$, :acct)) AS other_accounts_number;
SELECT regress.try(format($$SELECT * FROM darkspere.receive_sms_for(%s, 'AC058', '+15550580001', '+16660580001', NULL, 'SM058-x')$$, :acct)) AS no_body;
SELECT disposition FROM darkspere.receive_sms_for(:acct, 'AC058', '+15550589999', '+16660580001', 'hi', 'SM058-x');
SELECT count(*) AS stored FROM darkspere.messages WHERE message_sid = 'SM058-x';

-- Its own number: routed to the account's agent, with the request id traced, exactly as receive_sms would.
SELECT disposition, agent_id = :bot AS bot, reply IS NULL AS no_reply
  FROM darkspere.receive_sms_for(:acct, 'AC058', '+15550580001', '+16660580001', 'What time is it?', 'SM058-1', 0, 'req-058-1');
SELECT m.account_id = :acct AS acct, m.status, j.kind, j.state, j.payload
  FROM darkspere.messages m JOIN darkspere.jobs j ON j.message_id = m.message_id WHERE m.message_sid = 'SM058-1';
SELECT step FROM darkspere.trace_events WHERE request_id = 'req-058-1' ORDER BY event_id;
-- A duplicate MessageSid and a STOP go the same way as through receive_sms.
SELECT disposition FROM darkspere.receive_sms_for(:acct, 'AC058', '+15550580001', '+16660580001', 'What time is it?', 'SM058-1');
SELECT disposition, reply IS NOT NULL AS replied FROM darkspere.receive_sms_for(:acct, 'AC058', '+15550580001', '+16660580001', 'STOP', 'SM058-2');

-- What the worker needs around it: the number's account (NULL for a number the AccountSid does not own or that
-- does not exist), the nodes whose queues it serves (none on plain PostgreSQL: every job is in this queue), and
-- the queue's part of tick() for each node: an expired lease is reclaimed as tick() would.
SELECT darkspere.number_account('AC058', '+15550580001') = :acct AS own_number,
       darkspere.number_account('ACother', '+15550580001') AS other_account_sid,
       darkspere.number_account('AC058', '+15550589999') AS unknown_number;
SELECT count(*) AS queue_nodes FROM darkspere.queue_nodes();
SELECT count(*) AS claimed FROM darkspere.claim_jobs('w-058', 10, '30 seconds');
UPDATE darkspere.jobs SET lease_until = now() - interval '1 second' WHERE claimed_by = 'w-058' AND state = 'running';
SELECT darkspere.tick_queue() - 'pruned_jobs' - 'pruned_rate_limits' AS tick_queue;
SELECT state, attempt, last_error FROM darkspere.jobs
 WHERE message_id = (SELECT message_id FROM darkspere.messages WHERE message_sid = 'SM058-1');
