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
