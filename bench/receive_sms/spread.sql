-- bench/receive_sms/spread.sql — pgbench script: one inbound SMS from a random one of 10,000 phones to its
-- account's number (20 accounts, 50 agents). MessageSid unique per transaction (bench.sid sequence + client id).
\set phone random(1, 10000)
\set acct (:phone % 20) + 1
SELECT * FROM darkspere.receive_sms('ACbench' || lpad(:acct::text, 2, '0'), '+1555100' || lpad(:acct::text, 4, '0'), '+1666' || lpad(:phone::text, 7, '0'), 'Hello, what are your opening hours today?', 'SMb' || :client_id || '_' || nextval('bench.sid'));
